//! Readable tables for the terminal; every command that prints one also has `--json`.

use comfy_table::{ContentArrangement, Table, presets};

/// A table with `header`, one row per item, printed on stdout.
pub fn print(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) {
    let mut table = Table::new();
    table.load_style(presets::UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Disabled);
    table.set_header(header.iter().map(|name| name.to_string()));
    for row in rows {
        table.add_row(row.iter().map(|text| printable(text)).collect::<Vec<_>>());
    }
    super::print_line(&table.to_string());
}

/// `text` without control characters (a plugin's title could hold terminal escapes).
fn printable(text: &str) -> String {
    text.chars().map(|character| if character.is_control() { '\u{fffd}' } else { character }).collect()
}

/// A JSON value as one short cell: strings bare, the rest as JSON, cut at `width` characters.
pub fn cell(value: &serde_json::Value, width: usize) -> String {
    let text = match value {
        serde_json::Value::Null => "—".to_owned(),
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    if text.chars().count() > width {
        text.chars().take(width.saturating_sub(1)).collect::<String>() + "…"
    } else {
        text
    }
}
