//! The label values of the labelled metrics: each label is an enum whose variants are its
//! only values, declared with their text in one place (`label_enum!`), so a metric can only
//! be fed a value of its own label and every value is created at zero.

/// One label: an enum whose variants are the label's only values.
pub trait Label: Copy + Eq + std::fmt::Debug + 'static {
    /// The label's name.
    const NAME: &'static str;
    /// Every value, in declaration order.
    const ALL: &'static [Self];
    /// The value as written in the exposition.
    fn as_str(self) -> &'static str;
}

/// The labels of one metric family: one [`Label`] or a pair of them. The names and the
/// values come from the same types, so they cannot disagree.
pub trait LabelSet: Copy + 'static {
    /// The label names, in the order of [`LabelSet::values`].
    const NAMES: &'static [&'static str];
    /// The values of this series.
    fn values(self) -> Vec<&'static str>;
    /// Every series of the family.
    fn all() -> Vec<Self>;
}

impl<A: Label, B: Label> LabelSet for (A, B) {
    const NAMES: &'static [&'static str] = &[A::NAME, B::NAME];

    fn values(self) -> Vec<&'static str> {
        vec![self.0.as_str(), self.1.as_str()]
    }

    fn all() -> Vec<Self> {
        A::ALL
            .iter()
            .flat_map(|a| B::ALL.iter().map(move |b| (*a, *b)))
            .collect()
    }
}

/// Declares a label enum: its name, then each variant with its text. Implements [`Label`]
/// and [`LabelSet`] (the enum alone is a one-label set).
macro_rules! label_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident: $label:literal {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value as written in the exposition.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl $crate::metrics::labels::Label for $name {
            const NAME: &'static str = $label;
            const ALL: &'static [$name] = $name::ALL;

            fn as_str(self) -> &'static str {
                $name::as_str(self)
            }
        }

        impl $crate::metrics::labels::LabelSet for $name {
            const NAMES: &'static [&'static str] = &[$label];

            fn values(self) -> Vec<&'static str> {
                vec![self.as_str()]
            }

            fn all() -> Vec<Self> {
                $name::ALL.to_vec()
            }
        }
    };
}

label_enum! {
    /// pycti's connector states (the `state` enum; its label is named after the metric's
    /// full name, not `state`: `metrics::family::EnumGauge`).
    pub enum State: "state" {
        /// Waiting for work (the initial state).
        Idle => "idle",
        /// Processing.
        Running => "running",
        /// Shut down.
        Stopped => "stopped",
    }
}

label_enum! {
    /// How a snapshot lookup was answered (`lookups_total{outcome}`).
    pub enum LookupOutcome: "outcome" {
        /// The snapshot had data for the observable.
        Hit => "hit",
        /// The snapshot had nothing.
        Miss => "miss",
        /// Answered by the fallback (live IVRE) instead of the snapshot.
        Fallback => "fallback",
    }
}

label_enum! {
    /// How a platform message ended (`messages_total{result}`).
    pub enum MessageResult: "result" {
        /// Processed, results pushed.
        Ok => "ok",
        /// Processing failed (reported to the work).
        Error => "error",
        /// Not a valid message (not JSON, missing fields).
        Invalid => "invalid",
        /// A redelivered message that failed again, reported and dropped.
        Redelivered => "redelivered",
        /// The entity type is not in the connector's scope.
        OutOfScope => "out_of_scope",
        /// The entity's TLP is above the configured maximum.
        TlpRefused => "tlp_refused",
    }
}

label_enum! {
    /// What the daemon ran to keep its snapshot (`sync_runs_total{source}`).
    pub enum SyncSource: "source" {
        /// A pull from live IVRE (`IVRE_DB_URL*`).
        Pull => "pull",
        /// A file of the drop folder (`IVRE_DROP_DIR`).
        Drop => "drop",
        /// A generation fetched from a publisher (`IVRE_SNAPSHOT_SOURCE`).
        Fetch => "fetch",
        /// A generation published to a store (`IVRE_SNAPSHOT_PUBLISH`).
        Publish => "publish",
    }
}

label_enum! {
    /// How an upkeep run ended (`sync_runs_total{outcome}`).
    pub enum SyncOutcome: "outcome" {
        /// It did what it was for.
        Ok => "ok",
        /// It failed (retried later).
        Error => "error",
    }
}

impl SyncOutcome {
    /// `Ok` when `ok`, else `Error`.
    pub fn of(ok: bool) -> SyncOutcome {
        if ok {
            SyncOutcome::Ok
        } else {
            SyncOutcome::Error
        }
    }
}
