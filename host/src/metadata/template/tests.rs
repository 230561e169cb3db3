use serde_json::{Value, json};

use super::{MAX_OUTPUT_BYTES, SearchTemplate};

fn render(template: &str, context: &Value) -> Result<String, String> {
    SearchTemplate::parse(template)
        .map_err(|error| error.to_string())?
        .render(context)
        .map_err(|error| error.to_string())
}

#[test]
fn every_helper_renders_as_the_reference_does() {
    let context = json!({
        "title": "One Piece", "shout": "ONE PIECE", "padded": "  One Piece  ", "year": 1999, "zero": 0,
        "genres": ["tag1", "tag2"], "mixed": ["a", 1, true, null, [2], {"x": 1}], "empty": "", "nothing": null,
        "data": {"key": "value", "n": 5, "deep": {"x": 1}}, "query": "foo&bar=baz", "kana": "ワンピース", "ratio": 2.5,
    });
    let cases: &[(&str, &str)] = &[
        ("{{lowercase title}}", "one piece"),
        ("{{uppercase title}}", "ONE PIECE"),
        ("{{capitalize shout}}", "One piece"),
        ("[{{trim padded}}]", "[One Piece]"),
        ("{{truncate title 5}}", "One P..."),
        ("{{truncate title 5 \"!\"}}", "One P!"),
        ("{{truncate title 100}}", "One Piece"),
        ("{{truncate kana 5}}", "ワンピース"),
        ("{{truncate kana 2}}", "ワン..."),
        ("{{truncate title 0}}", "..."),
        ("{{replace title \"Piece\" \"Peace\"}}", "One Peace"),
        ("{{split title \" \" 1}}", "Piece"),
        ("[{{split title \" \" 9}}]", "[]"),
        ("{{join genres \" | \"}}", "tag1 | tag2"),
        ("{{join mixed}}", "a, 1, true"),
        ("[{{join title}}]", "[]"),
        ("{{urlencode query}}", "foo%26bar%3Dbaz"),
        ("{{urlencode \"a b\"}}", "a%20b"),
        ("{{padStart 5 3 \"0\"}}", "005"),
        ("{{padStart \"42\" 5}}", "00042"),
        ("{{padStart \"abc\" 2}}", "abc"),
        ("{{padStart \"7\" 3 \"\"}}", "7"),
        ("{{default nothing \"Unknown\"}}", "Unknown"),
        ("{{default missing \"Unknown\"}}", "Unknown"),
        ("{{default empty \"Unknown\"}}", "Unknown"),
        ("{{default zero \"Unknown\"}}", "0"),
        ("{{default genres \"Unknown\"}}", "Unknown"),
        ("{{length genres}}", "2"),
        ("{{length title}}", "9"),
        ("{{length kana}}", "5"),
        ("{{length year}}", "0"),
        ("{{lookup data \"key\"}}", "value"),
        ("{{lookup data \"n\"}}", "5"),
        ("[{{lookup data \"deep\"}}]", "[]"),
        ("[{{lookup data \"absent\"}}]", "[]"),
        ("{{math 5 \"+\" 3}}", "8"),
        ("{{math 10 \"/\" 2}}", "5"),
        ("{{math 10 \"/\" 4}}", "2.5"),
        ("{{math ratio \"*\" 2}}", "5"),
        ("{{math 7 \"%\" 4}}", "3"),
        ("[{{math 1 \"/\" 0}}]", "[]"),
        ("[{{math 1 \"%\" 0}}]", "[]"),
        ("[{{math 1 \"^\" 2}}]", "[]"),
        ("[{{math \"1\" \"+\" 2}}]", "[]"),
        ("{{#gt year 1990}}new{{else}}old{{/gt}}", "new"),
        ("{{#lt year 1990}}old{{else}}new{{/lt}}", "new"),
        ("{{#gt missing 0}}yes{{else}}no{{/gt}}", "no"),
        ("{{#and title year}}both{{/and}}", "both"),
        ("{{#and title empty}}both{{else}}not both{{/and}}", "not both"),
        ("{{#or empty zero}}one{{else}}neither{{/or}}", "neither"),
        ("{{#or empty genres}}one{{/or}}", "one"),
        ("{{#exists zero}}yes{{/exists}}", "yes"),
        ("{{#exists empty}}yes{{else}}no{{/exists}}", "no"),
        ("{{#exists nothing}}yes{{else}}no{{/exists}}", "no"),
        ("{{#ifEquals year 1999}}y{{else}}n{{/ifEquals}}", "y"),
        ("{{#ifEquals year \"1999\"}}y{{else}}n{{/ifEquals}}", "y"),
        ("{{#ifEquals missing empty}}y{{else}}n{{/ifEquals}}", "n"),
        ("{{#ifEquals missing other}}y{{else}}n{{/ifEquals}}", "y"),
        ("{{#ifNotEquals title \"Naruto\"}}differs{{/ifNotEquals}}", "differs"),
        ("{{#includes title \"Pie\"}}in{{/includes}}", "in"),
        ("{{#includes title \"pie\"}}in{{else}}case matters{{/includes}}", "case matters"),
        ("{{#includes genres \"tag1\"}}in{{else}}text only{{/includes}}", "text only"),
        ("{{lowercase (trim padded)}}{{#exists year}} {{year}}{{/exists}}", "one piece 1999"),
        ("{{title}} - {{missing}}", "One Piece -"),
        ("[{{lowercase}}]", "[]"),
        ("{{title}} & <b>", "One Piece & <b>"),
    ];
    for (template, expected) in cases {
        assert_eq!(render(template, &context).as_deref(), Ok(*expected), "{template}");
    }
}

#[test]
fn a_template_that_does_not_parse_is_refused() {
    for broken in ["{{#if}}", "{{/if}}", "{{#gt a 1}}open", "{{title"] {
        let error = SearchTemplate::parse(broken).unwrap_err();
        assert!(error.to_string().starts_with("the search template does not parse"), "{broken}: {error}");
    }
}

#[test]
fn output_past_the_cap_is_an_error_and_nothing_is_allocated_for_it() {
    let context = json!({"title": "x".repeat(6000), "many": vec!["word"; 5000]});
    let error = render("{{title}}{{title}}", &context).unwrap_err();
    assert!(error.contains(&format!("over {MAX_OUTPUT_BYTES} bytes")), "{error}");
    let error = render("{{#each many}}{{this}} {{/each}}", &context).unwrap_err();
    assert!(error.contains("over"), "{error}");
    let error = render("{{padStart \"1\" 4000000000}}", &context).unwrap_err();
    assert!(error.contains("padStart") && error.contains("limit"), "{error}");
    let error = render("{{replace title \"\" \"yy\"}}", &context).unwrap_err();
    assert!(error.contains("replace"), "{error}");
    let exactly = render("{{padStart \"\" 10000 \"a\"}}", &context).unwrap();
    assert_eq!(exactly.len(), MAX_OUTPUT_BYTES);
}

#[test]
fn partials_and_decorators_are_refused_before_they_can_recurse() {
    for recursive in [
        r#"{{#*inline "a"}}{{> a}}{{/inline}}{{> a}}"#,
        r#"{{#*inline "a"}}{{> b}}{{/inline}}{{#*inline "b"}}{{> a}}{{/inline}}{{> a}}"#,
        "{{> query}}",
        "{{#> layout}}x{{/layout}}",
        "{{~> a}}",
        "{{* decorator}}",
    ] {
        let error = SearchTemplate::parse(recursive).unwrap_err();
        assert!(error.to_string().contains("partial or a decorator"), "{recursive}: {error}");
    }
}

#[test]
fn a_helper_result_fed_to_another_is_capped_too() {
    let context = json!({"tags": vec!["t"; 2000]});
    let error = render("{{truncate (join tags (padStart \"\" 5000 \" \")) 5}}", &context).unwrap_err();
    assert!(error.contains("over 10000 bytes"), "{error}");
    let error = render(
        "{{length (padStart \"\" 9000 \"ab\")}}{{truncate (replace (padStart \"\" 9000 \"a\") \"a\" \"aa\") 3}}",
        &context,
    )
    .unwrap_err();
    assert!(error.contains("replace"), "{error}");
}
