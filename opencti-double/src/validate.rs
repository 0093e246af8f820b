//! Validation of an operation before it runs, with graphql-js's messages: known root and
//! object fields of the advertised version, leaf and object selections, arguments (known,
//! required, literals that coerce, variables of a fitting type), variable definitions
//! (input types, defined, used), fragments (known, acyclic); then the coercion of the
//! request's variables.

use serde_json::{Map, Value};

use crate::coerce::{coerce, variable_error, variable_fits};
use crate::execute::Executor;
use crate::graphql::{AstValue, Field, OperationKind, Type};
use crate::schema::{is_input_type, object_fields, root_fields, type_kind, FieldDef, SCALARS};

impl Executor<'_> {
    pub(crate) fn validate(&self, fields: &[&Field]) -> Result<(), String> {
        let root = self.op.kind.root_type();
        if self.op.kind == OperationKind::Subscription {
            return Err("double: subscriptions are not supported.".to_owned());
        }
        self.doc.check_fragments()?;
        self.validate_variable_definitions()?;
        let definitions = root_fields(self.version(), self.op.kind);
        for field in fields {
            if field.name == "__typename" {
                continue;
            }
            let Some(definition) = definitions.iter().find(|d| d.name == field.name) else {
                return Err(format!(
                    "Cannot query field \"{}\" on type \"{root}\".",
                    field.name
                ));
            };
            self.validate_field(root, definition, field)?;
        }
        Ok(())
    }

    fn validate_variable_definitions(&self) -> Result<(), String> {
        let op_name = self.op.name.as_deref();
        for definition in &self.op.variables {
            let named = definition.ty.named();
            if !is_input_type(self.version(), named) {
                return Err(match type_kind(self.version(), named) {
                    "UNKNOWN" => format!("Unknown type \"{named}\"."),
                    _ => format!(
                        "Variable \"${}\" cannot be non-input type \"{}\".",
                        definition.name, definition.ty
                    ),
                });
            }
        }
        let used = self.doc.used_variables(self.op);
        for name in &used {
            if !self.op.variables.iter().any(|d| &d.name == name) {
                return Err(match op_name {
                    Some(op) => {
                        format!("Variable \"${name}\" is not defined by operation \"{op}\".")
                    }
                    None => format!("Variable \"${name}\" is not defined."),
                });
            }
        }
        for definition in &self.op.variables {
            if !used.contains(&definition.name) {
                return Err(match op_name {
                    Some(op) => format!(
                        "Variable \"${}\" is never used in operation \"{op}\".",
                        definition.name
                    ),
                    None => format!("Variable \"${}\" is never used.", definition.name),
                });
            }
        }
        Ok(())
    }

    /// Arguments, then the selection against the field's type.
    fn validate_field(
        &self,
        parent: &str,
        definition: &FieldDef,
        field: &Field,
    ) -> Result<(), String> {
        self.validate_arguments(parent, definition, field)?;
        let ty = Type::of(definition.ty);
        let named = ty.named();
        let leaf = SCALARS.contains(&named) || named == "ConnectorType";
        if leaf && !field.selection.is_empty() {
            return Err(format!(
                "Field \"{}\" must not have a selection since type \"{ty}\" has no subfields.",
                field.name
            ));
        }
        if !leaf && field.selection.is_empty() {
            return Err(format!(
                "Field \"{}\" of type \"{ty}\" must have a selection of subfields. Did you mean \"{} {{ ... }}\"?",
                field.name, field.name
            ));
        }
        let Some(subfields) = object_fields(self.version(), named) else {
            return Ok(()); // entity types, __Type…: served leniently
        };
        for sub in self.doc.fields(&field.selection, &|t| t == named) {
            if sub.name == "__typename" {
                continue;
            }
            let Some(sub_definition) = subfields.iter().find(|d| d.name == sub.name) else {
                return Err(format!(
                    "Cannot query field \"{}\" on type \"{named}\".",
                    sub.name
                ));
            };
            self.validate_field(named, sub_definition, sub)?;
        }
        Ok(())
    }

    fn validate_arguments(
        &self,
        parent: &str,
        definition: &FieldDef,
        field: &Field,
    ) -> Result<(), String> {
        for (name, value) in &field.arguments {
            let Some((_, ty)) = definition.args.iter().find(|(n, _)| n == name) else {
                return Err(format!(
                    "Unknown argument \"{name}\" on field \"{parent}.{}\".",
                    field.name
                ));
            };
            let ty = Type::of(ty);
            match value {
                AstValue::Variable(var) => {
                    let Some(declared) = self.op.variables.iter().find(|d| &d.name == var) else {
                        continue; // reported as undefined already
                    };
                    if !variable_fits(&declared.ty, declared.default.is_some(), &ty) {
                        return Err(format!(
                            "Variable \"${var}\" of type \"{}\" used in position expecting type \"{ty}\".",
                            declared.ty
                        ));
                    }
                }
                literal if !literal.has_variables() => {
                    let json = literal.resolve(&Map::new());
                    coerce(self.version(), &json, &ty, name).map_err(|e| e.message)?;
                }
                _ => {}
            }
        }
        for (name, ty) in &definition.args {
            if ty.ends_with('!') && !field.arguments.iter().any(|(n, _)| n == name) {
                return Err(format!(
                    "Field \"{}\" argument \"{name}\" of type \"{ty}\" is required, but it was not provided.",
                    field.name
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn coerce_variables(&self) -> Result<(), String> {
        for definition in &self.op.variables {
            let name = &definition.name;
            match self.raw_variables.get(name) {
                None if definition.default.is_none() && definition.ty.is_non_null() => {
                    return Err(format!(
                        "Variable \"${name}\" of required type \"{}\" was not provided.",
                        definition.ty
                    ));
                }
                None => {}
                Some(Value::Null) if definition.ty.is_non_null() => {
                    return Err(format!(
                        "Variable \"${name}\" of non-null type \"{}\" must not be null.",
                        definition.ty
                    ));
                }
                Some(value) => {
                    coerce(self.version(), value, &definition.ty, name)
                        .map_err(|e| variable_error(name, &e))?;
                }
            }
        }
        Ok(())
    }
}
