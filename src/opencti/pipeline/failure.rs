//! What a message can end with besides results: a [`Failure`] (reported to its work, or,
//! when the platform or the broker is down, the message requeued) or a [`Skip`] (nothing
//! to send: out of scope, refused by the TLP gate). Their texts are what the platform
//! shows on the work and what the logs say.

use super::enrichment::ObservableOfError;
use super::gate::Refused;
use crate::index::IndexError;
use crate::metrics::MessageResult;
use crate::opencti::protocol::graphql::GraphqlError;
use crate::opencti::protocol::message::MessageError;
use crate::opencti::protocol::push::PushError;

/// The message text pycti uses when the TLP gate refuses an observable.
pub const TLP_REFUSED: &str = "Do not send any data, TLP of the observable is greater than MAX TLP";

/// Why a message could not be processed.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The body is not an enrichment message.
    #[error("invalid message: {0}")]
    Invalid(#[from] MessageError),
    /// The message names no entity.
    #[error("Internal enrichment must be based on a specific id")]
    NoEntityId,
    /// The platform does not show the entity to the connector, and the message holds no
    /// copy of it.
    #[error("Unable to read/access the entity, please check the connector permissions")]
    EntityUnreadable,
    /// The entity holds no valid observable of its type.
    #[error("cannot read the {stix_type} observable: {reason}")]
    Observable {
        stix_type: String,
        #[source]
        reason: ObservableOfError,
    },
    /// The served snapshot could not be read.
    #[error("cannot read the snapshot: {0}")]
    Snapshot(#[source] IndexError),
    /// A GraphQL call failed ([`GraphqlError::is_transient`] when the platform is down).
    #[error(transparent)]
    Platform(#[from] GraphqlError),
    /// The broker did not take the bundle: always worth a retry.
    #[error(transparent)]
    Push(#[from] PushError),
    /// The redelivery guard's verdict ([`super::redelivery`]).
    #[error("message dropped: it was being processed twice when the connector stopped (crash or kill); it is reported instead of retried again")]
    Redelivered,
}

impl Failure {
    /// A passing failure (the platform or the broker is down): the message was not
    /// processed and is requeued, not reported.
    pub fn is_transient(&self) -> bool {
        match self {
            Failure::Platform(e) => e.is_transient(),
            Failure::Push(_) => true,
            _ => false,
        }
    }

    /// How the message is counted ([`crate::metrics`]).
    pub fn result(&self) -> MessageResult {
        match self {
            Failure::Invalid(_) => MessageResult::Invalid,
            Failure::Redelivered => MessageResult::Redelivered,
            _ => MessageResult::Error,
        }
    }
}

/// Why nothing is sent for a message: the work ends in error with this text; a playbook
/// step gets its received bundle back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Skip {
    /// The entity's type is not one this connector enriches (`CONNECTOR_SCOPE`).
    #[error("entity type `{stix_type}` is not in this connector's scope ({})", .scope.join(", "))]
    OutOfScope {
        stix_type: String,
        scope: Vec<String>,
    },
    /// The TLP gate refused the entity (`IVRE_MAX_TLP`).
    #[error("{} ({} > {}{})", TLP_REFUSED, .0.assessment.tlp, .0.max, .0.assessment.explain())]
    TlpRefused(Box<Refused>),
}

impl Skip {
    /// How the message is counted ([`crate::metrics`]).
    pub fn result(&self) -> MessageResult {
        match self {
            Skip::OutOfScope { .. } => MessageResult::OutOfScope,
            Skip::TlpRefused(_) => MessageResult::TlpRefused,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stix::markings::{Assessment, Tlp};

    #[test]
    fn only_an_unreachable_platform_or_broker_requeues() {
        let transport = GraphqlError::Transport {
            url: "http://opencti:8080/graphql".into(),
            reason: "connection refused".into(),
        };
        let status = |status| GraphqlError::Status {
            status,
            body: String::new(),
        };
        let refused = GraphqlError::Graphql {
            operation: "workToProcessed".into(),
            name: "FORBIDDEN".into(),
            message: "no".into(),
        };
        assert!(Failure::Platform(transport).is_transient());
        assert!(Failure::Platform(status(503)).is_transient());
        assert!(Failure::Platform(status(429)).is_transient());
        assert!(!Failure::Platform(status(400)).is_transient());
        assert!(!Failure::Platform(refused).is_transient());
        let push = PushError::Refused {
            sequence: 1,
            attempts: 3,
        };
        assert!(Failure::Push(push).is_transient());
        for f in [
            Failure::NoEntityId,
            Failure::EntityUnreadable,
            Failure::Redelivered,
            Failure::Observable {
                stix_type: "ipv4-addr".into(),
                reason: ObservableOfError::NoValue,
            },
        ] {
            assert!(!f.is_transient(), "{f}");
        }
        assert_eq!(Failure::Redelivered.result(), MessageResult::Redelivered);
        assert_eq!(Failure::NoEntityId.result(), MessageResult::Error);
    }

    #[test]
    fn the_texts_the_platform_sees_are_kept() {
        assert_eq!(
            Failure::NoEntityId.to_string(),
            "Internal enrichment must be based on a specific id"
        );
        let observable = Failure::Observable {
            stix_type: "autonomous-system".into(),
            reason: ObservableOfError::NoNumber,
        };
        assert_eq!(
            observable.to_string(),
            "cannot read the autonomous-system observable: no `number`"
        );
        let refused = Skip::TlpRefused(Box::new(Refused {
            assessment: Assessment {
                tlp: Tlp::Red,
                refs: Vec::new(),
                unresolved: Vec::new(),
            },
            max: Tlp::Amber,
        }));
        assert_eq!(
            refused.to_string(),
            format!("{TLP_REFUSED} (TLP:RED > TLP:AMBER)")
        );
        assert_eq!(refused.result(), MessageResult::TlpRefused);
        let scope = Skip::OutOfScope {
            stix_type: "report".into(),
            scope: vec!["ipv4-addr".into(), "domain-name".into()],
        };
        assert_eq!(
            scope.to_string(),
            "entity type `report` is not in this connector's scope (ipv4-addr, domain-name)"
        );
    }
}
