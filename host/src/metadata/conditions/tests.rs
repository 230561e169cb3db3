use serde_json::{Value, json};

use super::{Condition, Conditions, Mode, Operator};

fn series() -> Value {
    json!({
        "type": "series", "bookCount": 10, "book_count": 10,
        "externalIds": {"plugin:mangabaka": {"id": "mb-1"}, "api:anilist": {"id": "21"}},
        "metadata": {"title": "One Piece", "status": "ongoing", "year": 1997, "publisher": null, "totalChapterCount": 1100.5,
                     "genres": ["Action", "Adventure"], "tags": [], "authors": [{"name": "Oda"}], "titleLock": false, "yearLock": true},
        "customMetadata": {"myField": "myValue", "author": {"details": {"years": 25}}, "flag": false, "list": [1, 2]},
    })
}

fn rule(field: &str, operator: Operator, value: Option<Value>) -> Condition {
    Condition { field: field.into(), operator, value }
}

fn passes(field: &str, operator: Operator, value: Option<Value>) -> bool {
    let conditions = Conditions { mode: Mode::All, rules: vec![rule(field, operator, value)] };
    conditions.check().unwrap_or_else(|error| panic!("{field} {operator:?}: {error}"));
    conditions.evaluate(&series()).is_ok()
}

#[test]
fn every_operator_on_present_missing_and_mistyped_values() {
    use Operator::*;
    let cases: &[(&str, Operator, Option<Value>, bool)] = &[
        ("external_ids.plugin:mangabaka", IsNull, None, false),
        ("externalIds.plugin:other", IsNull, None, true),
        ("externalIds.plugin:mangabaka", IsNotNull, None, true),
        ("metadata.publisher", IsNull, None, true),
        ("metadata.tags", IsNull, None, true),
        ("customMetadata.flag", IsNull, None, false),
        ("metadata.status", Equals, Some(json!("ongoing")), true),
        ("metadata.status", Equals, Some(json!("Ongoing")), false),
        ("metadata.publisher", Equals, None, true),
        ("metadata.title", Equals, None, false),
        ("bookCount", Equals, Some(json!("10")), true),
        ("bookCount", Equals, Some(json!(10.0)), true),
        ("metadata.title_lock", Equals, Some(json!(false)), true),
        ("metadata.yearLock", Equals, Some(json!("true")), true),
        ("custom_metadata.myField", Equals, Some(json!("myValue")), true),
        ("metadata.status", NotEquals, Some(json!("ended")), true),
        ("book_count", Gte, Some(json!(5)), true),
        ("bookCount", Gt, Some(json!(10)), false),
        ("bookCount", Lt, Some(json!(10)), false),
        ("bookCount", Lte, Some(json!(10)), true),
        ("externalIds.count", Equals, Some(json!(2)), true),
        ("metadata.totalChapterCount", Gt, Some(json!(1100)), true),
        ("metadata.ageRating", Gt, Some(json!(0)), false),
        ("customMetadata.author.details.years", Gte, Some(json!(25)), true),
        ("customMetadata.author.details.absent", Lt, Some(json!(25)), false),
        ("metadata.title", Contains, Some(json!("Piece")), true),
        ("metadata.title", NotContains, Some(json!("Naruto")), true),
        ("metadata.publisher", NotContains, Some(json!("x")), true),
        ("metadata.genres", Contains, Some(json!("Action")), true),
        ("metadata.genres", Contains, Some(json!("Act")), false),
        ("metadata.genres", NotContains, Some(json!("Romance")), true),
        ("metadata.title", StartsWith, Some(json!("One")), true),
        ("metadata.title", EndsWith, Some(json!("Piece")), true),
        ("metadata.title", Matches, Some(json!(r"^One\s+\w+")), true),
        ("metadata.title", Matches, Some(json!("(?i)^one")), true),
        ("metadata.title", Matches, Some(json!("^one")), false),
        ("metadata.year", Matches, Some(json!("^19")), true),
        ("metadata.status", In, Some(json!(["ongoing", "hiatus"])), true),
        ("metadata.status", In, Some(json!(["ended"])), false),
        ("metadata.publisher", In, Some(json!(["x"])), false),
        ("metadata.status", NotIn, Some(json!(["ended", "abandoned"])), true),
        ("metadata.imprint", NotIn, Some(json!(["x"])), true),
        ("type", Equals, Some(json!("series")), true),
    ];
    for (field, operator, value, expected) in cases {
        assert_eq!(passes(field, *operator, value.clone()), *expected, "{field} {operator:?} {value:?}");
    }
}

#[test]
fn modes_short_circuit_as_the_reference() {
    let low = rule("bookCount", Operator::Gte, Some(json!(50)));
    let null = rule("metadata.publisher", Operator::IsNull, None);
    let not_null = rule("metadata.publisher", Operator::IsNotNull, None);
    let all = Conditions { mode: Mode::All, rules: vec![low.clone(), null.clone()] };
    assert_eq!(all.evaluate(&series()), Err("bookCount Gte failed".into()));
    let any = Conditions { mode: Mode::Any, rules: vec![low.clone(), null] };
    assert_eq!(any.evaluate(&series()), Ok(()));
    let none = Conditions { mode: Mode::Any, rules: vec![low, not_null] };
    assert_eq!(none.evaluate(&series()), Err("no condition passed".into()));
    assert_eq!(Conditions::default().evaluate(&series()), Ok(()), "no rules: every series passes");
}

#[test]
fn the_json_shape_is_the_references() {
    let parsed: Conditions = serde_json::from_value(json!({
        "rules": [{"field": "book_count", "operator": "gte", "value": 1}, {"field": "metadata.title", "operator": "is_not_null"}]
    }))
    .unwrap();
    assert_eq!(parsed.mode, Mode::All);
    assert_eq!(parsed.rules[1].operator, Operator::IsNotNull);
    let unknown: Result<Conditions, _> = serde_json::from_value(json!({"rules": [{"field": "x", "operator": "like"}]}));
    let error = unknown.unwrap_err().to_string();
    assert!(error.contains("unknown variant `like`") && error.contains("is_null"), "{error}");
}

#[test]
fn a_rule_that_could_never_mean_anything_is_refused_when_saved() {
    use Operator::*;
    let cases: &[(&str, Operator, Option<Value>, &str)] = &[
        ("metadata.colour", Equals, Some(json!("x")), "no such field"),
        ("bookcount", Equals, Some(json!(1)), "no such field"),
        ("externalIds", IsNull, None, "no such field"),
        ("customMetadata.", IsNull, None, "no such field"),
        ("bookCount", Gt, Some(json!("5")), "needs a number"),
        ("bookCount", Gt, None, "needs a number"),
        ("metadata.title", Gt, Some(json!(5)), "not a number"),
        ("metadata.title", Contains, Some(json!(5)), "needs a string"),
        ("metadata.title", Matches, Some(json!("[invalid")), "is invalid"),
        ("metadata.genres", StartsWith, Some(json!("A")), "not text"),
        ("metadata.authors", Contains, Some(json!("Oda")), "works on text"),
        ("metadata.genres", Equals, Some(json!("Action")), "never equal"),
        ("metadata.status", In, Some(json!("ongoing")), "a list of"),
        ("metadata.status", In, Some(json!([["nested"]])), "a list of"),
        ("metadata.title", IsNull, Some(json!("x")), "takes no value"),
        ("metadata.title", Equals, Some(json!({"a": 1})), "a string, a number"),
    ];
    for (field, operator, value, why) in cases {
        let conditions = Conditions {
            mode: Mode::Any,
            rules: vec![rule("type", IsNotNull, None), rule(field, *operator, value.clone())],
        };
        let error = conditions.check().unwrap_err();
        assert_eq!(error.number, 2);
        assert!(error.to_string().contains(why), "{field} {operator:?}: {error}");
    }
}
