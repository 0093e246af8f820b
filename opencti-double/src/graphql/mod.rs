//! The double's model of a GraphQL request document (operations, fragments, fields,
//! arguments, variable definitions, type references), built from `apollo-parser`'s
//! syntax tree by `parse`, and the walks the executor needs: the fields of a selection set
//! with fragments applied, the variables an operation uses, fragment checks.

mod parse;

pub use self::parse::parse;

use std::collections::HashMap;
use std::fmt;

use serde_json::{Map, Value};

/// Fragment nesting beyond this is treated as a cycle.
const MAX_DEPTH: usize = 32;

/// A type reference: `ID!`, `[String!]`, `RegisterConnectorInput`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Type {
    Named(String),
    List(Box<Type>),
    NonNull(Box<Type>),
}

impl Type {
    /// A type written in SDL (the double's schema tables); panics if malformed.
    pub fn of(text: &str) -> Type {
        parse::type_of(text)
            .unwrap_or_else(|e| panic!("platform double: bad schema type {text:?}: {e}"))
    }

    pub fn named(&self) -> &str {
        match self {
            Type::Named(name) => name,
            Type::List(inner) | Type::NonNull(inner) => inner.named(),
        }
    }

    pub fn is_non_null(&self) -> bool {
        matches!(self, Type::NonNull(_))
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Named(name) => f.write_str(name),
            Type::List(inner) => write!(f, "[{inner}]"),
            Type::NonNull(inner) => write!(f, "{inner}!"),
        }
    }
}

/// A value in the query text.
#[derive(Clone, Debug, PartialEq)]
pub enum AstValue {
    Variable(String),
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    Null,
    Enum(String),
    List(Vec<AstValue>),
    Object(Vec<(String, AstValue)>),
}

impl AstValue {
    /// JSON, with variables substituted (missing ones are `null`, enums are strings).
    pub fn resolve(&self, variables: &Map<String, Value>) -> Value {
        match self {
            AstValue::Variable(name) => variables.get(name).cloned().unwrap_or(Value::Null),
            AstValue::Int(i) => Value::from(*i),
            AstValue::Float(x) => {
                serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number)
            }
            AstValue::Str(s) | AstValue::Enum(s) => Value::String(s.clone()),
            AstValue::Bool(b) => Value::Bool(*b),
            AstValue::Null => Value::Null,
            AstValue::List(items) => {
                Value::Array(items.iter().map(|v| v.resolve(variables)).collect())
            }
            AstValue::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.resolve(variables)))
                    .collect(),
            ),
        }
    }

    pub fn collect_variables(&self, out: &mut Vec<String>) {
        match self {
            AstValue::Variable(name) => out.push(name.clone()),
            AstValue::List(items) => items.iter().for_each(|v| v.collect_variables(out)),
            AstValue::Object(fields) => fields.iter().for_each(|(_, v)| v.collect_variables(out)),
            _ => {}
        }
    }

    pub fn has_variables(&self) -> bool {
        let mut found = Vec::new();
        self.collect_variables(&mut found);
        !found.is_empty()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OperationKind {
    Query,
    Mutation,
    Subscription,
}

impl OperationKind {
    pub fn root_type(self) -> &'static str {
        match self {
            OperationKind::Query => "Query",
            OperationKind::Mutation => "Mutation",
            OperationKind::Subscription => "Subscription",
        }
    }
}

#[derive(Debug)]
pub struct VariableDefinition {
    pub name: String,
    pub ty: Type,
    pub default: Option<AstValue>,
}

#[derive(Debug)]
pub struct Operation {
    pub kind: OperationKind,
    pub name: Option<String>,
    pub variables: Vec<VariableDefinition>,
    pub selection: Vec<Selection>,
}

#[derive(Debug)]
pub struct Fragment {
    pub type_condition: String,
    pub selection: Vec<Selection>,
}

#[derive(Debug)]
pub enum Selection {
    Field(Field),
    InlineFragment {
        type_condition: Option<String>,
        selection: Vec<Selection>,
    },
    FragmentSpread(String),
}

#[derive(Debug)]
pub struct Field {
    pub alias: Option<String>,
    pub name: String,
    pub arguments: Vec<(String, AstValue)>,
    pub selection: Vec<Selection>,
}

impl Field {
    /// The response key: the alias, else the name.
    pub fn key(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.name)
    }

    pub fn argument_values(&self, variables: &Map<String, Value>) -> Map<String, Value> {
        self.arguments
            .iter()
            .map(|(name, value)| (name.clone(), value.resolve(variables)))
            .collect()
    }
}

/// A parsed request document. Directives are parsed and ignored (their variables count
/// as used).
#[derive(Debug, Default)]
pub struct Document {
    pub operations: Vec<Operation>,
    pub fragments: HashMap<String, Fragment>,
    pub directive_variables: Vec<String>,
}

impl Document {
    /// The operation to run: the named one, or the only one.
    pub fn operation(&self, name: Option<&str>) -> Result<&Operation, String> {
        match name {
            Some(name) => self
                .operations
                .iter()
                .find(|op| op.name.as_deref() == Some(name))
                .ok_or_else(|| format!("Unknown operation named \"{name}\".")),
            None => match self.operations.as_slice() {
                [op] => Ok(op),
                [] => Err("Must provide an operation.".to_owned()),
                _ => Err(
                    "Must provide operation name if query contains multiple operations.".to_owned(),
                ),
            },
        }
    }

    /// The fields of a selection set, fragments whose type condition `applies` inlined.
    pub fn fields<'a>(
        &'a self,
        selection: &'a [Selection],
        applies: &dyn Fn(&str) -> bool,
    ) -> Vec<&'a Field> {
        let mut out = Vec::new();
        self.collect_fields(selection, applies, 0, &mut out);
        out
    }

    fn collect_fields<'a>(
        &'a self,
        selection: &'a [Selection],
        applies: &dyn Fn(&str) -> bool,
        depth: usize,
        out: &mut Vec<&'a Field>,
    ) {
        if depth > MAX_DEPTH {
            return;
        }
        for item in selection {
            match item {
                Selection::Field(field) => out.push(field),
                Selection::InlineFragment {
                    type_condition,
                    selection,
                } => {
                    if type_condition.as_deref().is_none_or(applies) {
                        self.collect_fields(selection, applies, depth + 1, out);
                    }
                }
                Selection::FragmentSpread(name) => {
                    if let Some(fragment) = self.fragments.get(name) {
                        if applies(&fragment.type_condition) {
                            self.collect_fields(&fragment.selection, applies, depth + 1, out);
                        }
                    }
                }
            }
        }
    }

    /// Visits every field at every depth (all fragments, whatever their condition).
    fn walk<'a>(
        &'a self,
        selection: &'a [Selection],
        depth: usize,
        visit: &mut dyn FnMut(&'a Field),
    ) {
        if depth > MAX_DEPTH {
            return;
        }
        for field in self.fields(selection, &|_| true) {
            visit(field);
            self.walk(&field.selection, depth + 1, visit);
        }
    }

    /// The variables an operation uses (fields, fragments, directives).
    pub fn used_variables(&self, op: &Operation) -> Vec<String> {
        let mut used = self.directive_variables.clone();
        self.walk(&op.selection, 0, &mut |field| {
            for (_, value) in &field.arguments {
                value.collect_variables(&mut used);
            }
        });
        used.sort();
        used.dedup();
        used
    }

    /// Unknown fragment spreads and fragment cycles.
    pub fn check_fragments(&self) -> Result<(), String> {
        let roots = self
            .operations
            .iter()
            .map(|op| &op.selection)
            .chain(self.fragments.values().map(|f| &f.selection));
        for selection in roots {
            self.check_spreads(selection, &mut Vec::new())?;
        }
        Ok(())
    }

    fn check_spreads<'a>(
        &'a self,
        selection: &'a [Selection],
        stack: &mut Vec<&'a str>,
    ) -> Result<(), String> {
        for item in selection {
            match item {
                Selection::Field(field) => self.check_spreads(&field.selection, stack)?,
                Selection::InlineFragment { selection, .. } => {
                    self.check_spreads(selection, stack)?
                }
                Selection::FragmentSpread(name) => {
                    let Some(fragment) = self.fragments.get(name) else {
                        return Err(format!("Unknown fragment \"{name}\"."));
                    };
                    if stack.contains(&name.as_str()) {
                        return Err(format!("Cannot spread fragment \"{name}\" within itself."));
                    }
                    stack.push(name);
                    self.check_spreads(&fragment.selection, stack)?;
                    stack.pop();
                }
            }
        }
        Ok(())
    }
}
