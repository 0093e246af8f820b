//! TLP markings: OpenCTI's fixed marking-definition ids and pycti's `check_max_tlp`
//! (`OPENCTI-PROTOCOL.md` §8).

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

    /// The TLP a marking-definition id stands for, if it is one of the fixed ids.
    pub fn from_marking_id(id: &str) -> Option<Tlp> {
        Tlp::ALL.into_iter().find(|t| t.marking_id() == id)
    }

    /// pycti's `check_max_tlp`: may data marked `self` be processed under `max`?
    pub fn allowed_under(self, max: Tlp) -> bool {
        self <= max
    }

    /// The most restrictive TLP among marking ids (unknown ids are ignored); CLEAR if none.
    pub fn most_restrictive<'a>(marking_ids: impl IntoIterator<Item = &'a str>) -> Tlp {
        marking_ids
            .into_iter()
            .filter_map(Tlp::from_marking_id)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The table of OPENCTI-PROTOCOL.md §8.1 (rows: entity TLP, columns: max TLP).
    #[test]
    fn check_max_tlp_table() {
        let names = [
            "TLP:CLEAR",
            "TLP:WHITE",
            "TLP:GREEN",
            "TLP:AMBER",
            "TLP:AMBER+STRICT",
            "TLP:RED",
        ];
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
    fn most_restrictive_wins() {
        let ids = [
            Tlp::Green.marking_id(),
            "marking-definition--other",
            Tlp::Red.marking_id(),
            Tlp::Clear.marking_id(),
        ];
        assert_eq!(Tlp::most_restrictive(ids), Tlp::Red);
        assert_eq!(Tlp::most_restrictive([]), Tlp::Clear);
    }
}
