/// The console's style sheet and its one script, served from `/console/static/` (the Content-Security-Policy allows
/// scripts and styles from this server only, never inline). Hand-written: a few rules and one small function, no
/// build chain.
enum ConsoleAssets {
    static let files: [String: (type: String, text: String)] = [
        "console.css": ("text/css; charset=utf-8", css),
        "console.js": ("text/javascript; charset=utf-8", js),
    ]

    static let css = """
        :root { --fg: #1d232a; --muted: #5b6570; --line: #d8dde3; --bg: #f7f8fa; --accent: #1f5fae;
          --good: #e5f4ea; --good-fg: #145a2a; --warn: #fff4d6; --warn-fg: #6b4e00; --bad: #fde7e7; --bad-fg: #8a1010; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
          background: var(--bg); }
        header { display: flex; align-items: center; gap: 24px; padding: 10px 24px; background: #16202b; color: #fff; }
        header a { color: #fff; text-decoration: none; }
        header nav a { margin-right: 16px; opacity: .85; }
        header nav a:hover { opacity: 1; }
        .brand { font-weight: 700; letter-spacing: .02em; }
        .who { margin-left: auto; display: flex; gap: 12px; align-items: center; }
        .who form { margin: 0; }
        nav.sub { padding: 8px 24px; background: #fff; border-bottom: 1px solid var(--line); }
        nav.sub a { margin-left: 16px; color: var(--accent); }
        main { padding: 16px 24px 48px; max-width: 1400px; }
        h1 { font-size: 22px; margin: 8px 0 16px; }
        h2 { font-size: 16px; margin: 24px 0 8px; }
        table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); }
        th, td { text-align: left; vertical-align: top; padding: 6px 8px; border-bottom: 1px solid var(--line); }
        th { background: #eef1f4; font-weight: 600; position: sticky; top: 0; }
        tr.failed td { background: var(--bad); }
        tr.soon td { background: var(--warn); }
        tr.end td { border-top: 2px solid var(--fg); }
        pre { margin: 0; white-space: pre-wrap; word-break: break-word; }
        pre.sql { font: 12.5px/1.4 ui-monospace, "DejaVu Sans Mono", monospace; }
        pre.pem { font: 12px ui-monospace, monospace; background: #fff; border: 1px solid var(--line); padding: 12px; }
        .param { display: inline-block; margin: 2px 8px 0 0; padding: 0 6px; background: #eef1f4; border-radius: 4px;
          font: 12px ui-monospace, monospace; }
        .error { color: var(--bad-fg); font-weight: 600; }
        .banner { padding: 10px 14px; border-radius: 6px; }
        .banner.good { background: var(--good); color: var(--good-fg); }
        .banner.warn { background: var(--warn); color: var(--warn-fg); }
        .banner.bad { background: var(--bad); color: var(--bad-fg); font-weight: 600; }
        .muted { color: var(--muted); }
        .live { display: inline-block; padding: 0 6px; border-radius: 4px; background: #c62828; color: #fff;
          font-size: 12px; margin-right: 6px; }
        .filters { display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: end; margin: 8px 0 16px; }
        .filters label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); }
        input, select, button { font: inherit; padding: 4px 8px; }
        button { cursor: pointer; }
        .login { display: flex; flex-direction: column; gap: 8px; max-width: 420px; }
        .cards { display: flex; flex-wrap: wrap; gap: 16px; }
        .card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 8px 16px; min-width: 180px; }
        .card h3 { font-size: 13px; margin: 4px 0; color: var(--muted); }
        .big { font-size: 28px; margin: 0; }
        dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; background: #fff;
          border: 1px solid var(--line); padding: 12px 16px; }
        dl.facts dt { color: var(--muted); }
        dl.facts dd { margin: 0; }
        ul.plain { list-style: none; padding: 0; }
        .kv { display: inline-block; margin-right: 8px; font-size: 12px; }
        """

    /// Live updates of a running session's replay: the page's timeline table carries `data-live`; the script
    /// listens to the session's server-sent events and appends each new timeline row (built with DOM calls, so
    /// recorded text is never parsed as HTML), and reloads the page once the session has ended.
    static let js = """
        "use strict";
        document.addEventListener("DOMContentLoaded", function () {
          var table = document.getElementById("timeline");
          if (!table || !table.dataset.live || !window.EventSource) { return; }
          var body = table.tBodies[0];
          var source = new EventSource("/console/sessions/" + encodeURIComponent(table.dataset.session) +
            "/live?from=" + body.rows.length);
          function cell(row, text, className) {
            var td = row.insertCell(-1);
            if (className) {
              var pre = document.createElement("pre");
              pre.className = className;
              pre.textContent = text;
              td.appendChild(pre);
            } else {
              td.textContent = text;
            }
          }
          source.addEventListener("row", function (message) {
            var r = JSON.parse(message.data);
            var row = body.insertRow(-1);
            if (r.failed) { row.className = "failed"; }
            cell(row, r.t || "");
            cell(row, r.kind || "");
            cell(row, r.sql ? r.sql + (r.parameters ? "\\n" + r.parameters : "") : (r.note || ""), r.sql ? "sql" : null);
            cell(row, [r.tag, r.rows, r.copy, r.error].filter(Boolean).join(" · "));
            cell(row, r.duration || "");
          });
          source.addEventListener("ended", function () {
            source.close();
            window.location.reload();
          });
        });
        """
}
