//! The HTML review as people see it: the page is rendered by headless Chromium (Debian's
//! `chromium`, which `.ci/run` installs) at a laptop's width with every folded section
//! opened, and what the browser laid out is checked — nothing wider than the page, no raw
//! Markdown in the text, the folded sections, the summary and the SVG graph of the paths
//! into and between roles present. Without Chromium the test fails (it is no skip).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

/// Opens every `<details>`, lets the browser lay the page out, and writes what it measured
/// into the DOM (which `--dump-dom` prints).
const PROBE: &str = r#"<script>
for (const d of document.querySelectorAll('details')) d.open = true;
const root = document.documentElement;
const text = document.body.innerText;
const widest = Math.max(0, ...[...document.querySelectorAll('table, svg, div, p, h1, h2, h3, pre')]
  .map(e => e.getBoundingClientRect().right));
const probe = {
  scroll_width: root.scrollWidth,
  client_width: root.clientWidth,
  widest_right: widest,
  details: document.querySelectorAll('details').length,
  summary: document.querySelectorAll('#summary table').length,
  svg_edges: document.querySelectorAll('svg path.edge').length,
  svg_escalation: document.querySelectorAll('svg path.edge.escalation').length,
  backticks: text.includes('`'),
  markdown_table: text.includes('|---') || text.includes('| --- |'),
  markdown_heading: /^#{1,6} /m.test(text),
  grants: document.querySelectorAll('.grant').length,
  matrix_rows: document.querySelectorAll('table.matrix tr').length,
};
const out = document.createElement('pre');
out.id = 'probe';
out.textContent = 'PROBE' + JSON.stringify(probe) + 'END';
document.body.appendChild(out);
</script>"#;

fn chromium() -> &'static str {
    for c in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(c).exists() {
            return c;
        }
    }
    panic!(
        "Chromium is needed to check the HTML review: apt-get install chromium (.ci/run installs it)"
    );
}

/// The page as Chromium laid it out at `width` pixels, with every section open.
fn render(html: &str, width: u32) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("review.html");
    let probed = html.replace("</body>", &format!("{PROBE}</body>"));
    assert_ne!(probed, html, "the page has a </body>");
    std::fs::write(&page, probed).unwrap();
    let profile = dir.path().join("profile");
    let out = Command::new("timeout")
        .arg("120")
        .arg(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-dev-shm-usage",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--window-size={width},900"))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let Some(json) = dom
        .split_once("<pre id=\"probe\">PROBE")
        .and_then(|(_, rest)| rest.split_once("END"))
        .map(|(j, _)| {
            j.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&")
        })
    else {
        panic!(
            "Chromium printed no probe (exit {:?}): {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    serde_json::from_str(&json).unwrap()
}

#[test]
fn the_review_page_reads_as_a_document_in_chromium() {
    let root = gatehouse_testenv::repo_root(env!("CARGO_MANIFEST_DIR"));
    let corpus = gatehouse_testenv::corpus(&root)
        .expect("the shared corpus (../shared/corpus) holds the export this page is made of");
    let file = corpus.join("authorization-details/example.json");
    let review =
        gatehouse_analyzer::review::review("example.json", &std::fs::read(&file).unwrap()).unwrap();
    assert!(
        !review.escalation_paths.is_empty() && !review.trust_paths.is_empty(),
        "the export has paths to draw"
    );
    let html = review.html();
    // The old page repeated the same action list on every row; grouped by policy, the
    // actions of a group are written once.
    let action_lists = html
        .matches("ai:InvokeModel, ai:InvokeModelWithResponseStream")
        .count();
    let groups = html.matches("class=\"grant\"").count();
    assert!(
        action_lists <= groups,
        "{action_lists} action lists for {groups} groups"
    );
    for width in [1024, 800] {
        let p = render(&html, width);
        let client = p["client_width"].as_f64().unwrap();
        assert!(client > 0.0 && client <= f64::from(width), "{p}");
        assert!(
            p["scroll_width"].as_f64().unwrap() <= client,
            "the page scrolls sideways at {width} px: {p}"
        );
        assert!(
            p["widest_right"].as_f64().unwrap() <= client + 0.5,
            "an element ends past the page's right edge at {width} px: {p}"
        );
        assert_eq!(p["backticks"], false, "raw Markdown code spans: {p}");
        assert_eq!(p["markdown_table"], false, "raw Markdown table: {p}");
        assert_eq!(p["markdown_heading"], false, "raw Markdown heading: {p}");
        assert!(p["details"].as_u64().unwrap() >= 7, "folded sections: {p}");
        assert_eq!(p["summary"].as_u64().unwrap(), 3, "summary tables: {p}");
        assert!(p["svg_edges"].as_u64().unwrap() >= 5, "graph edges: {p}");
        assert!(
            p["svg_escalation"].as_u64().unwrap() >= 1,
            "escalation edge: {p}"
        );
        assert!(p["grants"].as_u64().unwrap() >= 2, "grants grouped: {p}");
        assert!(
            p["matrix_rows"].as_u64().unwrap() >= 2,
            "identity × model matrix: {p}"
        );
    }
}
