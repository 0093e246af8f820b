//! TLP markings and the gate (`docs/opencti-protocol.md` §8): OpenCTI's fixed marking-definition
//! ids, the OASIS TLP 2.0 ones, pycti's `check_max_tlp`, and [`assess`], which decides on
//! every marking the message or the platform shows for an entity, failing closed.

use serde_json::Value;
use std::fmt;

/// A TLP level, in increasing order of restriction (CLEAR ≡ WHITE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tlp {
    Clear,
    Green,
    Amber,
    AmberStrict,
    Red,
}

/// A value that is not one of the six `TLP:*` definitions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a TLP marking (expected TLP:CLEAR, TLP:WHITE, TLP:GREEN, TLP:AMBER, TLP:AMBER+STRICT or TLP:RED)")]
pub struct BadTlp(pub String);

/// The OASIS TLP 2.0 marking definitions (extension
/// `extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d`), which other tools put in
/// `object_marking_refs`; OpenCTI itself uses [`Tlp::marking_id`].
const OASIS_TLP2_IDS: [(Tlp, &str); 5] = [
    (
        Tlp::Clear,
        "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    ),
    (
        Tlp::Green,
        "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    ),
    (
        Tlp::Amber,
        "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    ),
    (
        Tlp::AmberStrict,
        "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    ),
    (
        Tlp::Red,
        "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
    ),
];

impl Tlp {
    pub const ALL: [Tlp; 5] = [
        Tlp::Clear,
        Tlp::Green,
        Tlp::Amber,
        Tlp::AmberStrict,
        Tlp::Red,
    ];

    /// `TLP:AMBER` etc., any case; `TLP:WHITE` is `TLP:CLEAR`.
    pub fn parse(definition: &str) -> Result<Tlp, BadTlp> {
        match definition.trim().to_ascii_uppercase().as_str() {
            "TLP:CLEAR" | "TLP:WHITE" => Ok(Tlp::Clear),
            "TLP:GREEN" => Ok(Tlp::Green),
            "TLP:AMBER" => Ok(Tlp::Amber),
            "TLP:AMBER+STRICT" => Ok(Tlp::AmberStrict),
            "TLP:RED" => Ok(Tlp::Red),
            _ => Err(BadTlp(definition.to_owned())),
        }
    }

    /// OpenCTI's fixed marking-definition id (`identifier.js`).
    pub fn marking_id(self) -> &'static str {
        match self {
            Tlp::Clear => "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
            Tlp::Green => "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
            Tlp::Amber => "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
            Tlp::AmberStrict => "marking-definition--826578e1-40ad-459f-bc73-ede076f81f37",
            Tlp::Red => "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
        }
    }

    /// The TLP a marking-definition id stands for, if it is one of OpenCTI's fixed ids
    /// (TLP 1.0 ids and OpenCTI's AMBER+STRICT) or an OASIS TLP 2.0 id; any case.
    pub fn from_marking_id(id: &str) -> Option<Tlp> {
        let id = id.trim();
        Tlp::ALL
            .into_iter()
            .find(|t| t.marking_id().eq_ignore_ascii_case(id))
            .or_else(|| {
                OASIS_TLP2_IDS
                    .iter()
                    .find(|(_, known)| known.eq_ignore_ascii_case(id))
                    .map(|(t, _)| *t)
            })
    }

    /// pycti's `check_max_tlp`: may data marked `self` be processed under `max`?
    pub fn allowed_under(self, max: Tlp) -> bool {
        self <= max
    }

    /// The most restrictive TLP among marking ids with nothing to resolve them by: an id
    /// that is not a known TLP id counts as TLP:RED (see [`assess`]); CLEAR if none.
    pub fn most_restrictive<'a>(marking_ids: impl IntoIterator<Item = &'a str>) -> Tlp {
        marking_ids
            .into_iter()
            .map(|id| Tlp::from_marking_id(id).unwrap_or(Tlp::Red))
            .max()
            .unwrap_or(Tlp::Clear)
    }
}

impl fmt::Display for Tlp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tlp::Clear => "TLP:CLEAR",
            Tlp::Green => "TLP:GREEN",
            Tlp::Amber => "TLP:AMBER",
            Tlp::AmberStrict => "TLP:AMBER+STRICT",
            Tlp::Red => "TLP:RED",
        })
    }
}

/// `marking-definition--<uuid>` (any case) in lower case; `None` for anything else.
pub fn normalize_marking_id(id: &str) -> Option<String> {
    let lower = id.trim().to_ascii_lowercase();
    let uuid = lower.strip_prefix("marking-definition--")?;
    (uuid.len() == 36 && uuid::Uuid::try_parse(uuid).is_ok()).then_some(lower)
}

/// A marking definition as the platform shows it (an `objectMarking` entry) or as the
/// `enrich` command is given it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MarkingDefinition {
    /// The platform's internal id.
    pub id: Option<String>,
    /// The STIX id (`marking-definition--…`).
    pub standard_id: Option<String>,
    /// `TLP`, `PAP`, `statement`, or a custom type.
    pub definition_type: Option<String>,
    /// `TLP:AMBER`, `PAP:RED`, a statement's text…
    pub definition: Option<String>,
}

/// What a marking means for the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkingClass {
    /// A TLP definition.
    Tlp(Tlp),
    /// A resolved definition of another kind (PAP, statement, custom type): does not raise
    /// the TLP.
    Other,
    /// Unknown id, unreadable definition: counts as TLP:RED.
    Unresolved,
}

impl MarkingClass {
    /// The TLP it counts as (`None`: it does not count).
    fn level(self) -> Option<Tlp> {
        match self {
            MarkingClass::Tlp(t) => Some(t),
            MarkingClass::Other => None,
            MarkingClass::Unresolved => Some(Tlp::Red),
        }
    }

    /// The more restrictive of two views of one marking.
    fn max(self, other: MarkingClass) -> MarkingClass {
        match (self, other) {
            (MarkingClass::Unresolved, _) | (_, MarkingClass::Unresolved) => {
                MarkingClass::Unresolved
            }
            (MarkingClass::Tlp(a), MarkingClass::Tlp(b)) => MarkingClass::Tlp(a.max(b)),
            (MarkingClass::Tlp(t), MarkingClass::Other)
            | (MarkingClass::Other, MarkingClass::Tlp(t)) => MarkingClass::Tlp(t),
            (MarkingClass::Other, MarkingClass::Other) => MarkingClass::Other,
        }
    }
}

impl MarkingDefinition {
    /// An `objectMarking` entry of OpenCTI's GraphQL answer (missing fields stay `None`).
    pub fn from_graphql(entry: &Value) -> MarkingDefinition {
        let text = |k: &str| entry.get(k).and_then(Value::as_str).map(str::to_owned);
        MarkingDefinition {
            id: text("id"),
            standard_id: text("standard_id"),
            definition_type: text("definition_type"),
            definition: text("definition"),
        }
    }

    /// A definition given as `TYPE:VALUE` (`TLP:AMBER`, `PAP:RED`, `STATEMENT:…`), with the
    /// id the platform gives it: OpenCTI's fixed id for TLP, else
    /// `uuid5(OASIS, JCS({definition, definition_type}))` of the upper-cased values.
    /// `None` when it is not `TYPE:VALUE` or is an unknown TLP (`TLP:FOO`).
    pub fn from_definition(text: &str) -> Option<MarkingDefinition> {
        let upper = text.trim().to_uppercase();
        let (kind, value) = upper.split_once(':')?;
        if kind.is_empty() || value.is_empty() || kind.contains(char::is_whitespace) {
            return None;
        }
        let standard_id = if kind == "TLP" {
            Tlp::parse(&upper).ok()?.marking_id().to_owned()
        } else {
            super::ids::generate(
                "marking-definition",
                &serde_json::json!({"definition": upper, "definition_type": kind}),
            )
        };
        Some(MarkingDefinition {
            id: None,
            standard_id: Some(standard_id),
            definition_type: Some(kind.to_owned()),
            definition: Some(upper.clone()),
        })
    }

    /// The STIX id it is carried under on derived objects, when it has a valid one.
    pub fn carried_id(&self) -> Option<String> {
        self.standard_id.as_deref().and_then(normalize_marking_id)
    }

    /// What it means for the gate. Fails closed: a definition without a type or a value,
    /// a TLP-typed definition that is not a TLP name, or a definition without a valid STIX
    /// id (it could not be carried) is [`MarkingClass::Unresolved`]. A value that is a TLP
    /// name counts as that TLP whatever the type says; the fixed TLP ids count too.
    pub fn class(&self) -> MarkingClass {
        let kind = self.definition_type.as_deref().map(str::trim).unwrap_or("");
        let value = self.definition.as_deref().map(str::trim).unwrap_or("");
        let Some(carried) = self.carried_id() else {
            return MarkingClass::Unresolved;
        };
        if kind.is_empty() || value.is_empty() {
            return MarkingClass::Unresolved;
        }
        let by_value = match Tlp::parse(value) {
            Ok(t) => MarkingClass::Tlp(t),
            Err(_) if kind.to_ascii_uppercase().contains("TLP") => MarkingClass::Unresolved,
            Err(_) => MarkingClass::Other,
        };
        match Tlp::from_marking_id(&carried) {
            Some(t) => by_value.max(MarkingClass::Tlp(t)),
            None => by_value,
        }
    }

    /// Does `id` (a STIX id from a message, any case) name this definition?
    fn answers(&self, id: &str) -> bool {
        [&self.standard_id, &self.id]
            .into_iter()
            .flatten()
            .any(|known| known.trim().eq_ignore_ascii_case(id))
    }
}

/// What the platform shows of an entity's markings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlatformMarkings {
    /// The entity's `objectMarking` list (an entry may be unreadable).
    Shown(Vec<MarkingDefinition>),
    /// The entity was read but its `objectMarking` is not a list.
    Unreadable,
    /// The platform does not show the entity to the connector: no id of the message can
    /// be resolved.
    Hidden,
}

impl PlatformMarkings {
    /// The `objectMarking` field of an entity the platform returned.
    pub fn from_graphql(object_marking: Option<&Value>) -> PlatformMarkings {
        match object_marking {
            Some(Value::Array(list)) => {
                PlatformMarkings::Shown(list.iter().map(MarkingDefinition::from_graphql).collect())
            }
            _ => PlatformMarkings::Unreadable,
        }
    }
}

/// The gate's view of an entity's markings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    /// The most restrictive TLP of every marking (an unresolved one counts as TLP:RED).
    pub tlp: Tlp,
    /// The marking ids every derived object carries: the message's valid ids, the
    /// platform's, and TLP:RED's when something was unresolved. Lower case, no repeats.
    pub refs: Vec<String>,
    /// What could not be resolved (for messages and logs; never empty when it mattered).
    pub unresolved: Vec<String>,
}

impl Assessment {
    /// May the entity be enriched under `max`?
    pub fn allowed_under(&self, max: Tlp) -> bool {
        self.tlp.allowed_under(max)
    }

    /// Why the TLP is what it is, when something was unresolved.
    pub fn explain(&self) -> String {
        if self.unresolved.is_empty() {
            String::new()
        } else {
            format!(
                "; unresolved markings count as TLP:RED: {}",
                self.unresolved.join(", ")
            )
        }
    }
}

/// Decides on every marking of an entity: `message_refs` is the `object_marking_refs`
/// of the message's STIX object (`None`: absent), `platform` what the platform shows.
///
/// Fails closed: an id of the message that is neither a known TLP id nor resolved by the
/// platform, a malformed id or list, an unreadable platform entry, or any id while the
/// platform hides the entity, counts as TLP:RED, never as nothing. Ids are matched
/// case-insensitively. Resolved non-TLP definitions (PAP, statement, custom) do not raise
/// the TLP. Every marking considered is carried (see [`Assessment::refs`]).
pub fn assess(message_refs: Option<&Value>, platform: &PlatformMarkings) -> Assessment {
    let mut tlp = Tlp::Clear;
    let mut refs: Vec<String> = Vec::new();
    let mut unresolved: Vec<String> = Vec::new();
    fn carry(refs: &mut Vec<String>, id: String) {
        if !refs.contains(&id) {
            refs.push(id);
        }
    }
    let shown: &[MarkingDefinition] = match platform {
        PlatformMarkings::Shown(list) => list,
        PlatformMarkings::Unreadable => {
            unresolved.push("the platform's objectMarking is unreadable".into());
            &[]
        }
        PlatformMarkings::Hidden => &[],
    };
    let listed: Vec<&Value> = match message_refs {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list.iter().collect(),
        Some(other) => {
            unresolved.push(format!("object_marking_refs is not a list ({other})"));
            Vec::new()
        }
    };
    for value in listed {
        let Some(text) = value.as_str() else {
            unresolved.push(format!("{value} (not a marking id)"));
            continue;
        };
        let Some(id) = normalize_marking_id(text) else {
            unresolved.push(format!("{text:?} (not a marking id)"));
            continue;
        };
        let fixed = Tlp::from_marking_id(&id).map(MarkingClass::Tlp);
        let resolved = shown
            .iter()
            .filter(|d| d.answers(&id))
            .map(MarkingDefinition::class)
            .reduce(MarkingClass::max);
        let class = match (fixed, resolved) {
            (Some(a), Some(b)) => a.max(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => {
                let why = if matches!(platform, PlatformMarkings::Hidden) {
                    "the platform does not show the entity"
                } else {
                    "unknown to the platform"
                };
                unresolved.push(format!("{id} ({why})"));
                MarkingClass::Unresolved
            }
        };
        if let Some(level) = class.level() {
            tlp = tlp.max(level);
        }
        carry(&mut refs, id);
    }
    for definition in shown {
        let class = definition.class();
        if class == MarkingClass::Unresolved {
            unresolved.push(format!(
                "{} (unreadable definition on the platform)",
                definition
                    .standard_id
                    .as_deref()
                    .or(definition.id.as_deref())
                    .unwrap_or("an objectMarking entry without id")
            ));
        }
        if let Some(level) = class.level() {
            tlp = tlp.max(level);
        }
        if let Some(id) = definition.carried_id() {
            carry(&mut refs, id);
        }
    }
    if !unresolved.is_empty() {
        tlp = Tlp::Red;
        carry(&mut refs, Tlp::Red.marking_id().to_owned());
    }
    Assessment {
        tlp,
        refs,
        unresolved,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The table of docs/opencti-protocol.md §8.1 (rows: entity TLP, columns: max TLP).
    #[test]
    fn check_max_tlp_table() {
        let names = crate::config::table::TLP_NAMES;
        let table = [
            [true, true, true, true, true, true],
            [true, true, true, true, true, true],
            [false, false, true, true, true, true],
            [false, false, false, true, true, true],
            [false, false, false, false, true, true],
            [false, false, false, false, false, true],
        ];
        for (row, entity) in names.iter().enumerate() {
            for (col, max) in names.iter().enumerate() {
                let got = Tlp::parse(entity)
                    .unwrap()
                    .allowed_under(Tlp::parse(max).unwrap());
                assert_eq!(got, table[row][col], "{entity} under {max}");
            }
        }
        assert!(Tlp::parse("amber").is_err());
        assert!(Tlp::parse("PAP:RED").is_err());
        assert_eq!(Tlp::parse("tlp:amber+strict").unwrap(), Tlp::AmberStrict);
    }

    #[test]
    fn most_restrictive_wins_and_unknown_ids_count_as_red() {
        let ids = [
            Tlp::Green.marking_id(),
            Tlp::Amber.marking_id(),
            Tlp::Clear.marking_id(),
        ];
        assert_eq!(Tlp::most_restrictive(ids), Tlp::Amber);
        assert_eq!(
            Tlp::most_restrictive([Tlp::Green.marking_id(), "marking-definition--other"]),
            Tlp::Red
        );
        assert_eq!(Tlp::most_restrictive([]), Tlp::Clear);
    }

    #[test]
    fn marking_ids_match_in_any_case_and_tlp2_ids_are_known() {
        let upper = Tlp::Amber.marking_id().to_ascii_uppercase();
        assert_eq!(Tlp::from_marking_id(&upper), Some(Tlp::Amber));
        assert_eq!(
            Tlp::from_marking_id("marking-definition--939A9414-2ddd-4d32-a0cd-375ea402b003"),
            Some(Tlp::AmberStrict)
        );
        assert_eq!(
            normalize_marking_id(" MARKING-DEFINITION--5E57C739-391A-4EB3-B6BE-7D15CA92D5ED"),
            Some(Tlp::Red.marking_id().to_owned())
        );
        assert_eq!(normalize_marking_id("marking-definition--x"), None);
        assert_eq!(
            normalize_marking_id("identity--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"),
            None
        );
    }

    #[test]
    fn definitions_given_as_text() {
        let pap = MarkingDefinition::from_definition("pap:red").unwrap();
        assert_eq!(
            pap.standard_id.as_deref(),
            Some("marking-definition--4e4e3b84-de45-53df-9d9b-b21207699fd8")
        );
        assert_eq!(pap.class(), MarkingClass::Other);
        let white = MarkingDefinition::from_definition("TLP:WHITE").unwrap();
        assert_eq!(white.standard_id.as_deref(), Some(Tlp::Clear.marking_id()));
        assert_eq!(white.class(), MarkingClass::Tlp(Tlp::Clear));
        assert_eq!(MarkingDefinition::from_definition("TLP:FOO"), None);
        assert_eq!(MarkingDefinition::from_definition("amber"), None);
        assert_eq!(MarkingDefinition::from_definition(":x"), None);
    }

    fn platform(entries: &[(&str, Option<&str>, Option<&str>)]) -> PlatformMarkings {
        PlatformMarkings::Shown(
            entries
                .iter()
                .map(|(id, kind, value)| MarkingDefinition {
                    id: Some(format!("internal-{id}")),
                    standard_id: Some((*id).to_owned()),
                    definition_type: kind.map(str::to_owned),
                    definition: value.map(str::to_owned),
                })
                .collect(),
        )
    }

    const CUSTOM: &str = "marking-definition--0b9f6c1c-3b8e-4d5e-9f00-2a7b7c1d2e3f";

    #[test]
    fn unknown_ids_fail_closed() {
        let refs = json!([Tlp::Green.marking_id(), CUSTOM]);
        // Unknown to the platform: TLP:RED, carried with TLP:RED's id.
        let a = assess(Some(&refs), &platform(&[]));
        assert_eq!(a.tlp, Tlp::Red);
        assert_eq!(
            a.refs,
            [Tlp::Green.marking_id(), CUSTOM, Tlp::Red.marking_id()]
        );
        assert!(a.explain().contains(CUSTOM), "{}", a.explain());
        // Entity hidden: the same.
        assert_eq!(assess(Some(&refs), &PlatformMarkings::Hidden).tlp, Tlp::Red);
        // Resolved by the platform as a PAP (by its STIX id, in another case): GREEN.
        let shown = platform(&[(&CUSTOM.to_uppercase(), Some("PAP"), Some("PAP:RED"))]);
        let a = assess(Some(&refs), &shown);
        assert_eq!(a.tlp, Tlp::Green);
        assert_eq!(a.refs, [Tlp::Green.marking_id(), CUSTOM]);
        assert!(a.unresolved.is_empty());
        // Resolved by the platform's internal id too.
        let by_internal = json!([format!("internal-{CUSTOM}")]);
        assert_eq!(
            assess(Some(&by_internal), &shown).tlp,
            Tlp::Red,
            "not a STIX id"
        );
        // Unreadable definitions, lists and entries.
        for broken in [
            platform(&[(CUSTOM, Some("PAP"), None)]),
            platform(&[(CUSTOM, None, Some("PAP:RED"))]),
            platform(&[(CUSTOM, Some("TLP"), Some("TLP:FOO"))]),
            platform(&[("not-an-id", Some("PAP"), Some("PAP:RED"))]),
            PlatformMarkings::from_graphql(Some(&json!({"edges": []}))),
            PlatformMarkings::from_graphql(None),
        ] {
            assert_eq!(assess(None, &broken).tlp, Tlp::Red, "{broken:?}");
        }
        for refs in [
            json!("marking-definition--x"),
            json!([1]),
            json!(["TLP:GREEN"]),
        ] {
            assert_eq!(assess(Some(&refs), &platform(&[])).tlp, Tlp::Red, "{refs}");
        }
        assert_eq!(assess(Some(&json!(null)), &platform(&[])).tlp, Tlp::Clear);
    }

    #[test]
    fn platform_markings_count_and_are_carried() {
        let shown = platform(&[
            (Tlp::Amber.marking_id(), Some("TLP"), Some("TLP:AMBER")),
            (
                "marking-definition--4e4e3b84-de45-53df-9d9b-b21207699fd8",
                Some("PAP"),
                Some("PAP:RED"),
            ),
        ]);
        let a = assess(Some(&json!([Tlp::Clear.marking_id()])), &shown);
        assert_eq!(a.tlp, Tlp::Amber);
        assert_eq!(
            a.refs,
            [
                Tlp::Clear.marking_id(),
                Tlp::Amber.marking_id(),
                "marking-definition--4e4e3b84-de45-53df-9d9b-b21207699fd8"
            ]
        );
        // A value that is a TLP name counts whatever its type; a TLP-typed id too.
        let odd = platform(&[
            (CUSTOM, Some("statement"), Some("tlp:red")),
            (
                Tlp::AmberStrict.marking_id(),
                Some("PAP"),
                Some("PAP:CLEAR"),
            ),
        ]);
        assert_eq!(assess(None, &odd).tlp, Tlp::Red);
        let odd = platform(&[(
            Tlp::AmberStrict.marking_id(),
            Some("PAP"),
            Some("PAP:CLEAR"),
        )]);
        assert_eq!(assess(None, &odd).tlp, Tlp::AmberStrict);
        // A message TLP id says more than the platform's definition of it: the most
        // restrictive counts.
        let lying = platform(&[(Tlp::Red.marking_id(), Some("TLP"), Some("TLP:CLEAR"))]);
        assert_eq!(
            assess(Some(&json!([Tlp::Red.marking_id()])), &lying).tlp,
            Tlp::Red
        );
    }
}
