//! Input coercion with graphql-js's messages (`coerceInputValue`): literal arguments and
//! request variables checked against the scalar, enum, list and input object types of the
//! schema, and where a variable of one type may be used.

use serde_json::Value;

use crate::graphql::Type;
use crate::options::Version;
use crate::schema::{input_fields, CONNECTOR_TYPES};

/// Where in an input value an error is, and what.
pub(crate) struct CoercionError {
    pub(crate) path: String,
    pub(crate) value: Value,
    pub(crate) message: String,
}

/// Checks `value` against `ty` like graphql-js's `coerceInputValue`.
pub(crate) fn coerce(
    version: Version,
    value: &Value,
    ty: &Type,
    path: &str,
) -> Result<(), CoercionError> {
    let fail = |message: String| CoercionError {
        path: path.to_owned(),
        value: value.clone(),
        message,
    };
    match ty {
        Type::NonNull(inner) => {
            if value.is_null() {
                return Err(fail(format!(
                    "Expected non-nullable type \"{ty}\" not to be null."
                )));
            }
            coerce(version, value, inner, path)
        }
        _ if value.is_null() => Ok(()),
        Type::List(inner) => match value {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .try_for_each(|(i, item)| coerce(version, item, inner, &format!("{path}[{i}]"))),
            single => coerce(version, single, inner, path),
        },
        Type::Named(name) => coerce_named(version, value, name, path).map_err(|e| match e {
            Ok(message) => fail(message),
            Err(nested) => nested,
        }),
    }
}

/// A named type: `Err(Ok(message))` for an error at this value, `Err(Err(e))` nested.
fn coerce_named(
    version: Version,
    value: &Value,
    name: &str,
    path: &str,
) -> Result<(), Result<String, CoercionError>> {
    let shown = value.to_string();
    let ok = |valid: bool, message: String| if valid { Ok(()) } else { Err(Ok(message)) };
    match name {
        "String" => ok(
            value.is_string(),
            format!("String cannot represent a non string value: {shown}"),
        ),
        "ID" => ok(
            value.is_string() || value.is_i64() || value.is_u64(),
            format!("ID cannot represent value: {shown}"),
        ),
        "Boolean" => ok(
            value.is_boolean(),
            format!("Boolean cannot represent a non boolean value: {shown}"),
        ),
        "Int" => ok(
            value.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
            format!("Int cannot represent non-integer value: {shown}"),
        ),
        "Float" => ok(
            value.is_number(),
            format!("Float cannot represent non numeric value: {shown}"),
        ),
        "DateTime" => ok(
            value
                .as_str()
                .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok()),
            format!("DateTime cannot represent an invalid date-time-string {shown}."),
        ),
        "Any" | "JSON" => Ok(()),
        "ConnectorType" => ok(
            value.as_str().is_some_and(|s| CONNECTOR_TYPES.contains(&s)),
            match value.as_str() {
                Some(s) => format!("Value \"{s}\" does not exist in \"ConnectorType\" enum."),
                None => {
                    format!("Enum \"ConnectorType\" cannot represent non-string value: {shown}.")
                }
            },
        ),
        _ => {
            let Some(fields) = input_fields(version, name) else {
                return Err(Ok(format!("Unknown type \"{name}\".")));
            };
            let Value::Object(object) = value else {
                return Err(Ok(format!("Expected type \"{name}\" to be an object.")));
            };
            for (field, ty) in &fields {
                let ty = Type::of(ty);
                match object.get(*field) {
                    None if ty.is_non_null() => {
                        return Err(Ok(format!(
                            "Field \"{field}\" of required type \"{ty}\" was not provided."
                        )))
                    }
                    None => {}
                    Some(v) => coerce(version, v, &ty, &format!("{path}.{field}")).map_err(Err)?,
                }
            }
            match object.keys().find(|k| !fields.iter().any(|(f, _)| f == k)) {
                Some(unknown) => Err(Ok(format!(
                    "Field \"{unknown}\" is not defined by type \"{name}\"."
                ))),
                None => Ok(()),
            }
        }
    }
}

/// graphql-js's message for a variable that does not coerce.
pub(crate) fn variable_error(name: &str, error: &CoercionError) -> String {
    let at = if error.path == name {
        String::new()
    } else {
        format!(" at \"{}\"", error.path)
    };
    format!(
        "Variable \"${name}\" got invalid value {}{at}; {}",
        error.value, error.message
    )
}

/// Whether a variable of type `var` may be used where `location` is expected.
pub(crate) fn variable_fits(var: &Type, has_default: bool, location: &Type) -> bool {
    match (var, location) {
        (Type::NonNull(v), Type::NonNull(l)) => variable_fits(v, false, l),
        (v, Type::NonNull(l)) => has_default && variable_fits(v, false, l),
        (Type::NonNull(v), l) => variable_fits(v, false, l),
        (Type::List(v), Type::List(l)) => variable_fits(v, false, l),
        (Type::Named(a), Type::Named(b)) => a == b,
        _ => false,
    }
}
