//! What the double records and hands to the test: the requests it answered
//! ([`GraphqlCall`]), the messages its worker took from the push queue ([`Pushed`]), what
//! it knows of each work ([`WorkProgress`]), and how a test makes the next call fail
//! ([`Reject`]).

use serde_json::Value;

/// One HTTP request received by the double (GraphQL or not), in arrival order.
#[derive(Clone, Debug)]
pub struct GraphqlCall {
    /// The first top-level field of the operation (`registerConnector`, `workEdit`, …);
    /// empty when the request could not be parsed or was not a GraphQL POST.
    pub field: String,
    /// For `workEdit`: the first field of its selection (`toReceived`, `toProcessed`, …).
    pub work_op: Option<String>,
    /// The `query` text.
    pub query: String,
    /// The `variables` object as sent (`Null` if absent).
    pub variables: Value,
    /// Every header, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The request path (`/graphql`, or whatever the connector used).
    pub path: String,
    /// Extra: the arguments of `field`, variables substituted (`Null` if none).
    pub arguments: Value,
    /// Extra: the arguments of `work_op`, variables substituted (`Null` if none).
    pub work_op_arguments: Value,
    /// Extra: the HTTP status the double answered.
    pub status: u16,
    /// Extra: the body the double answered (JSON, or a JSON string for text bodies).
    pub response: Value,
}

impl GraphqlCall {
    /// The value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `id` argument of a `workEdit` call.
    pub fn work_id(&self) -> Option<&str> {
        (self.field == "workEdit")
            .then(|| self.arguments.get("id").and_then(Value::as_str))
            .flatten()
    }
}

/// One message taken from the push queue (as the worker would), already acked.
#[derive(Clone, Debug)]
pub struct Pushed {
    pub delivery_mode: Option<u8>,
    pub content_encoding: Option<String>,
    /// The message JSON (`applicant_id`, `work_id`, `action_sequence`, `content`, …).
    pub body: Value,
    /// `content`, base64-decoded and parsed (`Null` if the message has no `content`).
    pub bundle: Value,
    pub redelivered: bool,
    /// Extra: the `content_type` property (pycti sets none).
    pub content_type: Option<String>,
    /// Extra: whether the message had AMQP headers (pycti sends none).
    pub has_headers: bool,
    /// Extra: the exchange and routing key it was published with.
    pub exchange: String,
    pub routing_key: String,
    /// Extra: a piece of a multi-object message, split by the double's worker (the message's
    /// `body`, one object of its bundle in `bundle`).
    pub split_by_worker: bool,
}

impl Pushed {
    /// `body.work_id`, if any.
    pub fn work_id(&self) -> Option<&str> {
        self.body.get("work_id").and_then(Value::as_str)
    }
}

/// How [`crate::PlatformDouble::reject_next`] makes a call fail.
#[derive(Clone, Debug)]
pub enum Reject {
    /// HTTP 200 with `{"errors":[{"message": …}], "data": null}`.
    GraphqlError(String),
    /// That HTTP status, with a plain-text body.
    Status(u16),
}

/// What the double knows of a work (from the `workEdit` calls).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkProgress {
    pub received: u32,
    pub processed: u32,
    /// Sum of `addExpectations`, the connector's and the worker's (for the messages it split).
    pub expectations: i64,
    /// Objects the worker imported and reported (one `reportExpectation` each).
    pub imported: i64,
    /// Multi-object messages the worker split.
    pub split_by_worker: u32,
    pub reported: u32,
    pub pings: u32,
    /// `inError` of the last `toProcessed`.
    pub in_error: Option<bool>,
    /// `message` of the last `toProcessed`.
    pub message: Option<String>,
}
