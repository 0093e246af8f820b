//! Request documents and schema type references parsed by `apollo-parser` (a
//! spec-compliant, lossless GraphQL parser), then walked into the double's model: each
//! operation with its variable definitions, selection sets, fields with their aliases and
//! arguments, fragments and values. A syntax error is a `Syntax Error: …` text, answered
//! with `GRAPHQL_PARSE_FAILED` like the platform's Apollo Server.

use apollo_parser::cst::{self, CstNode as _};
use apollo_parser::Parser;

use super::{
    AstValue, Document, Field, Fragment, Operation, OperationKind, Selection, Type,
    VariableDefinition,
};

/// Parses an executable document: operations and fragments only (directives are read for
/// the variables they use, then ignored).
pub fn parse(source: &str) -> Result<Document, String> {
    let tree = Parser::new(source).parse();
    if let Some(error) = tree.errors().next() {
        return Err(syntax_error(error));
    }
    let mut walk = Walk::default();
    let mut doc = Document::default();
    for definition in tree.document().definitions() {
        match definition {
            cst::Definition::OperationDefinition(op) => {
                let operation = walk.operation(&op)?;
                doc.operations.push(operation);
            }
            cst::Definition::FragmentDefinition(fragment) => {
                let (name, fragment) = walk.fragment(&fragment)?;
                if doc.fragments.contains_key(&name) {
                    return Err(format!("There can be only one fragment named \"{name}\"."));
                }
                doc.fragments.insert(name, fragment);
            }
            other => {
                return Err(format!(
                    "Syntax Error: a request holds operations and fragments, not {:?}.",
                    other.syntax().kind()
                ))
            }
        }
    }
    if doc.operations.is_empty() && doc.fragments.is_empty() {
        return Err("Syntax Error: Unexpected <EOF>.".to_owned());
    }
    doc.directive_variables = walk.directive_variables;
    Ok(doc)
}

/// A type reference written in SDL (`ID!`, `[String!]`).
pub(super) fn type_of(text: &str) -> Result<Type, String> {
    let tree = Parser::new(text).parse_type();
    if let Some(error) = tree.errors().next() {
        return Err(syntax_error(error));
    }
    type_ref(Some(tree.ty()))
}

fn syntax_error(error: &apollo_parser::Error) -> String {
    let found = match error.data() {
        "" => "<EOF>".to_owned(),
        data => format!("{data:?}"),
    };
    format!(
        "Syntax Error: {}, found {found} at offset {}.",
        error.message(),
        error.index()
    )
}

/// A node the parser reported no error for but left out (cannot happen on a tree
/// without errors; answered as a syntax error rather than a panic).
fn missing(what: &str) -> String {
    format!("Syntax Error: Expected {what}.")
}

fn name(node: Option<cst::Name>) -> Result<String, String> {
    node.map(|n| String::from(n.text()))
        .ok_or_else(|| missing("Name"))
}

/// The walk of one document: collects the variables used by directives on the way.
#[derive(Default)]
struct Walk {
    directive_variables: Vec<String>,
}

impl Walk {
    fn operation(&mut self, op: &cst::OperationDefinition) -> Result<Operation, String> {
        // The shorthand `{ … }` has no operation type: a query.
        let kind = match op.operation_type() {
            Some(t) if t.mutation_token().is_some() => OperationKind::Mutation,
            Some(t) if t.subscription_token().is_some() => OperationKind::Subscription,
            _ => OperationKind::Query,
        };
        let variables = match op.variable_definitions() {
            Some(definitions) => definitions
                .variable_definitions()
                .map(|d| self.variable_definition(&d))
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        self.directives(op.directives())?;
        Ok(Operation {
            kind,
            name: op.name().map(|n| String::from(n.text())),
            variables,
            selection: self.selection_set(op.selection_set())?,
        })
    }

    fn variable_definition(
        &mut self,
        definition: &cst::VariableDefinition,
    ) -> Result<VariableDefinition, String> {
        let name = name(definition.variable().and_then(|v| v.name()))?;
        let ty = type_ref(definition.ty())?;
        let default = match definition.default_value() {
            Some(default) => Some(value(default.value())?),
            None => None,
        };
        self.directives(definition.directives())?;
        Ok(VariableDefinition { name, ty, default })
    }

    fn fragment(
        &mut self,
        fragment: &cst::FragmentDefinition,
    ) -> Result<(String, Fragment), String> {
        let name = name(fragment.fragment_name().and_then(|n| n.name()))?;
        let type_condition =
            name_of_condition(fragment.type_condition())?.ok_or_else(|| missing("\"on\""))?;
        self.directives(fragment.directives())?;
        let selection = self.selection_set(fragment.selection_set())?;
        Ok((
            name,
            Fragment {
                type_condition,
                selection,
            },
        ))
    }

    fn selection_set(&mut self, set: Option<cst::SelectionSet>) -> Result<Vec<Selection>, String> {
        let set = set.ok_or_else(|| missing("\"{\""))?;
        let selection = set
            .selections()
            .map(|s| self.selection(s))
            .collect::<Result<Vec<_>, _>>()?;
        if selection.is_empty() {
            return Err(missing("a selection"));
        }
        Ok(selection)
    }

    fn selection(&mut self, selection: cst::Selection) -> Result<Selection, String> {
        Ok(match selection {
            cst::Selection::Field(field) => Selection::Field(self.field(&field)?),
            cst::Selection::FragmentSpread(spread) => {
                let name = name(spread.fragment_name().and_then(|n| n.name()))?;
                self.directives(spread.directives())?;
                Selection::FragmentSpread(name)
            }
            cst::Selection::InlineFragment(inline) => {
                let type_condition = name_of_condition(inline.type_condition())?;
                self.directives(inline.directives())?;
                Selection::InlineFragment {
                    type_condition,
                    selection: self.selection_set(inline.selection_set())?,
                }
            }
        })
    }

    fn field(&mut self, field: &cst::Field) -> Result<Field, String> {
        let alias = match field.alias() {
            Some(alias) => Some(name(alias.name())?),
            None => None,
        };
        let arguments = match field.arguments() {
            Some(arguments) => arguments
                .arguments()
                .map(|a| Ok((name(a.name())?, value(a.value())?)))
                .collect::<Result<Vec<_>, String>>()?,
            None => Vec::new(),
        };
        self.directives(field.directives())?;
        let selection = match field.selection_set() {
            Some(set) => self.selection_set(Some(set))?,
            None => Vec::new(),
        };
        Ok(Field {
            alias,
            name: name(field.name())?,
            arguments,
            selection,
        })
    }

    /// Directives are not applied; the variables of their arguments count as used.
    fn directives(&mut self, directives: Option<cst::Directives>) -> Result<(), String> {
        for directive in directives.iter().flat_map(|d| d.directives()) {
            for argument in directive.arguments().iter().flat_map(|a| a.arguments()) {
                value(argument.value())?.collect_variables(&mut self.directive_variables);
            }
        }
        Ok(())
    }
}

/// The type of `on Type`, if there is a condition.
fn name_of_condition(condition: Option<cst::TypeCondition>) -> Result<Option<String>, String> {
    condition
        .map(|c| name(c.named_type().and_then(|t| t.name())))
        .transpose()
}

fn type_ref(ty: Option<cst::Type>) -> Result<Type, String> {
    Ok(match ty.ok_or_else(|| missing("a type"))? {
        cst::Type::NamedType(named) => Type::Named(name(named.name())?),
        cst::Type::ListType(list) => Type::List(Box::new(type_ref(list.ty())?)),
        cst::Type::NonNullType(non_null) => {
            let inner = match (non_null.named_type(), non_null.list_type()) {
                (Some(named), _) => Type::Named(name(named.name())?),
                (None, Some(list)) => Type::List(Box::new(type_ref(list.ty())?)),
                (None, None) => return Err(missing("a type")),
            };
            Type::NonNull(Box::new(inner))
        }
    })
}

/// A value of the document; an integer beyond 64 bits is kept as a float (graphql-js
/// keeps the text and fails its coercion to `Int` the same way).
fn value(node: Option<cst::Value>) -> Result<AstValue, String> {
    Ok(match node.ok_or_else(|| missing("a value"))? {
        cst::Value::Variable(variable) => AstValue::Variable(name(variable.name())?),
        cst::Value::StringValue(string) => AstValue::Str(String::from(&string)),
        cst::Value::FloatValue(float) => AstValue::Float(
            f64::try_from(&float).map_err(|e| format!("Syntax Error: Invalid number: {e}."))?,
        ),
        cst::Value::IntValue(int) => {
            let text = int
                .int_token()
                .map(|t| t.text().to_owned())
                .ok_or_else(|| missing("an Int"))?;
            match text.parse::<i64>() {
                Ok(i) => AstValue::Int(i),
                Err(_) => AstValue::Float(
                    text.parse()
                        .map_err(|_| format!("Syntax Error: Invalid number \"{text}\"."))?,
                ),
            }
        }
        cst::Value::BooleanValue(boolean) => AstValue::Bool(boolean.true_token().is_some()),
        cst::Value::NullValue(_) => AstValue::Null,
        cst::Value::EnumValue(enum_value) => AstValue::Enum(name(enum_value.name())?),
        cst::Value::ListValue(list) => AstValue::List(
            list.values()
                .map(|v| value(Some(v)))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        cst::Value::ObjectValue(object) => AstValue::Object(
            object
                .object_fields()
                .map(|f| Ok((name(f.name())?, value(f.value())?)))
                .collect::<Result<Vec<_>, String>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Map};

    use super::*;

    fn field<'a>(doc: &'a Document, selection: &'a [Selection], name: &str) -> &'a Field {
        doc.fields(selection, &|_| true)
            .into_iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no field {name}"))
    }

    #[test]
    fn operations_variables_arguments_and_values_are_walked() {
        let doc = parse(
            r#"mutation Register($input: RegisterConnectorInput, $n: Int = 3, $l: [String!]! @d(x: 1)) {
                 reg: registerConnector(input: $input) @include(if: $z) { id }
                 other(a: 1, b: -2.5e1, c: "é\n\u00e9", d: true, e: null, f: ENUM, g: [1, $n],
                       h: {k: "v", m: {z: false}}, i: 99999999999999999999, j: """
                     block
                       indented
                 """)
               }"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let op = doc
            .operation(Some("Register"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(op.kind, OperationKind::Mutation);
        let vars: Vec<String> = op
            .variables
            .iter()
            .map(|v| format!("{}:{}", v.name, v.ty))
            .collect();
        assert_eq!(
            vars,
            ["input:RegisterConnectorInput", "n:Int", "l:[String!]!"]
        );
        assert_eq!(op.variables[1].default, Some(AstValue::Int(3)));
        let register = field(&doc, &op.selection, "registerConnector");
        assert_eq!(register.key(), "reg");
        assert_eq!(
            register.arguments,
            [("input".to_owned(), AstValue::Variable("input".to_owned()))]
        );
        assert_eq!(register.selection.len(), 1);
        let mut variables = Map::new();
        variables.insert("n".to_owned(), json!(7));
        let other = field(&doc, &op.selection, "other").argument_values(&variables);
        assert_eq!(
            serde_json::Value::Object(other),
            json!({"a": 1, "b": -25.0, "c": "é\né", "d": true, "e": null, "f": "ENUM",
                   "g": [1, 7], "h": {"k": "v", "m": {"z": false}}, "i": 1e20,
                   "j": "block\n  indented"})
        );
        // The directive's variable counts as used, like graphql-js.
        assert!(doc.used_variables(op).contains(&"z".to_owned()));
    }

    #[test]
    fn fragments_apply_by_type_condition() {
        let doc = parse(
            "query($id: String!) { stixCoreObject(id: $id) { id ...F ... on AutonomousSystem { number } ... { name } } }
             fragment F on IPv4Addr { value }",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let op = doc.operation(None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(op.kind, OperationKind::Query);
        let object = &field(&doc, &op.selection, "stixCoreObject").selection;
        let names = |applies: &dyn Fn(&str) -> bool| -> Vec<String> {
            doc.fields(object, applies)
                .iter()
                .map(|f| f.name.clone())
                .collect()
        };
        assert_eq!(names(&|t| t == "IPv4Addr"), ["id", "value", "name"]);
        assert_eq!(
            names(&|t| t == "AutonomousSystem"),
            ["id", "number", "name"]
        );
        assert_eq!(doc.check_fragments(), Ok(()));
    }

    #[test]
    fn shorthand_query_and_schema_types() {
        let doc = parse("{ about { version } }").unwrap_or_else(|e| panic!("{e}"));
        let op = doc.operation(None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((op.kind, op.name.as_deref()), (OperationKind::Query, None));
        for text in ["ID!", "[String!]", "[[Int]!]!", "RegisterConnectorInput"] {
            assert_eq!(type_of(text).map(|t| t.to_string()), Ok(text.to_owned()));
        }
        assert!(type_of("[String").is_err());
    }

    #[test]
    fn bad_documents_are_refused() {
        for (source, expected) in [
            ("", "Syntax Error"),
            ("   # only a comment", "Syntax Error"),
            ("{ about { version }", "Syntax Error"),
            ("{ about { } }", "Syntax Error"),
            ("query { about(x: ) { version } }", "Syntax Error"),
            ("query($v: Int = $w) { about { version } }", "Syntax Error"),
            (
                "type Query { a: Int }",
                "Syntax Error: a request holds operations and fragments",
            ),
            (
                "{ a ...F } fragment F on Query { a } fragment F on Query { a }",
                "There can be only one fragment named \"F\".",
            ),
        ] {
            match parse(source) {
                Ok(doc) => panic!("{source:?} parsed: {doc:?}"),
                Err(e) => assert!(e.starts_with(expected), "{source:?}: {e}"),
            }
        }
    }
}
