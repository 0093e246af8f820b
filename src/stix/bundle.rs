//! Collects the objects of one enrichment, gives new ones their provenance, merges
//! what is seen twice, and emits a STIX 2.1 bundle.
//!
//! - New SCOs get `x_opencti_created_by_ref`, new SDOs and relationships `created_by_ref`,
//!   `created` and `modified`; all new objects get the markings the gate considered
//!   (the enriched observable's and the platform's), and the enriched observable gets the
//!   ones it lacks. The author Organization stays unmarked: it is a fixed identity, not data.
//! - Every object gets the enriched observable's granted organizations
//!   (`x_opencti_granted_refs`), as pycti does before sending (`docs/opencti-protocol.md` §6.1).
//! - A relationship met several times (several records) is emitted once: its id comes
//!   from type, source and target only, and its seen period widens to cover them all.

use super::objects;
use crate::ivre::Timestamp;
use serde_json::{json, Map, Value};
use std::collections::{BTreeSet, HashMap};

/// The builder's maps are keyed by STIX ids: foldhash (seeded per process) instead of
/// SipHash, which issue 12's profile found at 8 % of an enrichment.
type IdMap<V> = HashMap<String, V, foldhash::fast::RandomState>;

/// Who and what marks the new objects.
#[derive(Debug, Clone)]
pub struct Provenance {
    /// Name of the author Organization (`CONNECTOR_NAME`).
    pub author_name: String,
    /// Marking-definition ids of the enriched observable.
    pub markings: Vec<String>,
    /// Organization ids the enriched observable is shared with.
    pub granted_refs: Vec<String>,
    /// `created`/`modified` of new SDOs and relationships (STIX timestamp).
    pub timestamp: String,
}

/// When and by what IVRE saw the fact a relationship states.
#[derive(Debug, Clone)]
pub struct Seen {
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
    /// e.g. `passive DNS_ANSWER (LAB-SENSOR)`, `scans (lab-scanner)`.
    pub source: String,
}

struct Relationship {
    id: String,
    relationship_type: &'static str,
    source: String,
    target: String,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    sources: BTreeSet<String>,
}

/// Builds one bundle.
pub struct BundleBuilder {
    provenance: Provenance,
    author_id: String,
    relationship_times: bool,
    objects: Vec<Map<String, Value>>,
    positions: IdMap<usize>,
    relationships: Vec<Relationship>,
    relationship_positions: IdMap<usize>,
}

fn is_sco(object: &Map<String, Value>) -> bool {
    object
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| crate::observable::SCOPES.contains(&t))
}

fn id_of(object: &Map<String, Value>) -> String {
    object
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

impl BundleBuilder {
    /// Starts a bundle holding the author Organization.
    pub fn new(provenance: Provenance, relationship_times: bool) -> BundleBuilder {
        let mut author = objects::organization(&provenance.author_name);
        author.insert("created".into(), provenance.timestamp.clone().into());
        author.insert("modified".into(), provenance.timestamp.clone().into());
        let author_id = id_of(&author);
        let mut builder = BundleBuilder {
            provenance,
            author_id,
            relationship_times,
            objects: Vec::new(),
            positions: IdMap::default(),
            relationships: Vec::new(),
            relationship_positions: IdMap::default(),
        };
        builder.push(author);
        builder
    }

    fn push(&mut self, object: Map<String, Value>) -> String {
        let id = id_of(&object);
        if !self.positions.contains_key(&id) {
            self.positions.insert(id.clone(), self.objects.len());
            self.objects.push(object);
        }
        id
    }

    /// Adds the enriched observable as it came (its own author stands); its markings are
    /// completed with the ones the gate considered, so that it carries them too.
    pub fn add_enriched(&mut self, mut object: Map<String, Value>) -> String {
        if !self.provenance.markings.is_empty() {
            let refs = object
                .entry("object_marking_refs")
                .or_insert_with(|| json!([]));
            if !refs.is_array() {
                *refs = json!([]);
            }
            if let Value::Array(list) = refs {
                // Ids of the message in another case are the same markings.
                list.retain(|r| {
                    r.as_str().is_none_or(|r| {
                        !self
                            .provenance
                            .markings
                            .iter()
                            .any(|m| m.eq_ignore_ascii_case(r) && m != r)
                    })
                });
                for marking in &self.provenance.markings {
                    if !list.iter().any(|r| r == marking) {
                        list.push(marking.clone().into());
                    }
                }
            }
        }
        self.push(object)
    }

    /// Adds a new object with provenance; an object already present is kept as is.
    pub fn add(&mut self, mut object: Map<String, Value>) -> String {
        let id = id_of(&object);
        if self.positions.contains_key(&id) {
            return id;
        }
        if is_sco(&object) {
            object.insert(
                "x_opencti_created_by_ref".into(),
                self.author_id.clone().into(),
            );
        } else {
            object.insert("created_by_ref".into(), self.author_id.clone().into());
            // An object that carries its own times keeps them (the Note: its id depends
            // on its `created`).
            for key in ["created", "modified"] {
                object
                    .entry(key)
                    .or_insert_with(|| self.provenance.timestamp.clone().into());
            }
        }
        if !self.provenance.markings.is_empty() {
            object.insert(
                "object_marking_refs".into(),
                json!(self.provenance.markings),
            );
        }
        self.push(object)
    }

    /// Adds a label to an object of the bundle (`x_opencti_labels` on observables,
    /// `labels` on the others).
    pub fn label(&mut self, id: &str, label: &str) {
        let Some(&pos) = self.positions.get(id) else {
            return;
        };
        let object = &mut self.objects[pos];
        let key = if is_sco(object) {
            "x_opencti_labels"
        } else {
            "labels"
        };
        let labels = object.entry(key).or_insert_with(|| json!([]));
        if let Value::Array(list) = labels {
            if !list.iter().any(|l| l == label) {
                list.push(label.into());
            }
        }
    }

    /// Records a relationship; the same (type, source, target) again widens its period.
    pub fn relate(
        &mut self,
        relationship_type: &'static str,
        source: &str,
        target: &str,
        seen: Option<Seen>,
    ) {
        let id = objects::relationship_id(relationship_type, source, target);
        let pos = match self.relationship_positions.get(&id) {
            Some(&pos) => pos,
            None => {
                self.relationship_positions
                    .insert(id.clone(), self.relationships.len());
                self.relationships.push(Relationship {
                    id,
                    relationship_type,
                    source: source.to_owned(),
                    target: target.to_owned(),
                    first: None,
                    last: None,
                    sources: BTreeSet::new(),
                });
                self.relationships.len() - 1
            }
        };
        if let Some(seen) = seen {
            let rel = &mut self.relationships[pos];
            rel.first = min_opt(rel.first, seen.first.or(seen.last));
            rel.last = max_opt(rel.last, seen.last.or(seen.first));
            rel.sources.insert(seen.source);
        }
    }

    fn relationship_object(&self, rel: &Relationship) -> Map<String, Value> {
        // Room for the provenance `add` inserts: no map growth.
        let mut out = Map::with_capacity(14);
        out.insert("type".into(), "relationship".into());
        out.insert("spec_version".into(), "2.1".into());
        out.insert("id".into(), rel.id.clone().into());
        out.insert("relationship_type".into(), rel.relationship_type.into());
        out.insert("source_ref".into(), rel.source.clone().into());
        out.insert("target_ref".into(), rel.target.clone().into());
        if let (Some(first), Some(last)) = (rel.first, rel.last) {
            let (first_text, last_text) = (first.to_rfc3339(), last.to_rfc3339());
            let sources = rel.sources.iter().cloned().collect::<Vec<_>>().join("; ");
            out.insert(
                "description".into(),
                format!("Seen by IVRE from {first_text} to {last_text} ({sources}).").into(),
            );
            if self.relationship_times {
                // STIX wants stop_time later than start_time.
                let stop_text = if last_text <= first_text {
                    Timestamp {
                        micros: (first.micros / 1_000_000 + 1) * 1_000_000,
                    }
                    .to_rfc3339()
                } else {
                    last_text
                };
                out.insert("start_time".into(), first_text.into());
                out.insert("stop_time".into(), stop_text.into());
            }
        }
        out
    }

    /// The bundle (`type`, `id`, `objects`; no bundle-level `spec_version`).
    pub fn finish(mut self, bundle_id: String) -> Value {
        let relationships: Vec<Map<String, Value>> = self
            .relationships
            .iter()
            .map(|r| self.relationship_object(r))
            .collect();
        for rel in relationships {
            self.add(rel);
        }
        if !self.provenance.granted_refs.is_empty() {
            for object in &mut self.objects {
                let refs = object
                    .entry("x_opencti_granted_refs")
                    .or_insert_with(|| json!([]));
                if let Value::Array(list) = refs {
                    for org in &self.provenance.granted_refs {
                        if !list.iter().any(|o| o == org) {
                            list.push(org.clone().into());
                        }
                    }
                }
            }
        }
        // Moved, not `json!`: the macro would serialize the objects into a copy.
        let mut bundle = Map::with_capacity(3);
        bundle.insert("type".into(), "bundle".into());
        bundle.insert("id".into(), bundle_id.into());
        bundle.insert(
            "objects".into(),
            Value::Array(self.objects.into_iter().map(Value::Object).collect()),
        );
        Value::Object(bundle)
    }
}

fn min_opt(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn max_opt(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}
