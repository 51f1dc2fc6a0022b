/// The console's Mustache templates, compiled into the binary so that a daemon installed as one file serves its
/// console without a resource folder. `{{name}}` is HTML-escaped; the only `{{{…}}}` are the layout's rendered body
/// and the replay's timeline rows (escaped by `ConsoleViews.timelineHTML`).
/// No inline script or style anywhere (the Content-Security-Policy forbids both).
enum ConsoleTemplates {
    static let all: [String: String] = [
        "layout": layout, "error": error, "login": login, "overview": overview, "project": project,
        "sessions": sessions, "replay": replay, "audit": audit, "verify": verify, "certificates": certificates,
        "certificate": certificate, "kmip": kmip, "kmip-object": kmipObject,
    ]

    static let layout = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{title}} · Gatehouse</title>
        <link rel="stylesheet" href="/console/static/console.css">
        <script src="/console/static/console.js" defer></script>
        </head>
        <body>
        <header>
        <a class="brand" href="/console">Gatehouse</a>
        {{#principal}}
        <nav><a href="/console">Overview</a><a href="/console/audit">Audit</a></nav>
        <div class="who"><span id="principal">{{principal}}</span>
        {{#signOut}}<form method="post" action="/console/logout"><button type="submit">Sign out</button></form>{{/signOut}}
        </div>
        {{/principal}}
        </header>
        {{#project}}
        <nav class="sub" aria-label="project">Project <strong>{{slug}}</strong>
        <a href="{{overview}}">Overview</a><a href="{{sessions}}">PAM sessions</a>
        <a href="{{certificates}}">Certificates</a><a href="{{kmip}}">KMIP</a></nav>
        {{/project}}
        <main>
        <h1>{{title}}</h1>
        {{{body}}}
        </main>
        </body>
        </html>
        """

    static let error = """
        <p class="banner bad" id="error">{{message}}</p>
        <p><a href="/console">Back to the overview</a></p>
        """

    static let login = """
        <p>Sign in with an access token (for example from <code>gatehouse identity token</code>), or open the console
        with a client certificate the HTTPS listener trusts.</p>
        {{#message}}<p class="banner bad" id="login-error">{{message}}</p>{{/message}}
        <form method="post" action="/console/login" class="login">
        <label for="token">Access token</label>
        <input type="password" id="token" name="token" autocomplete="off" required>
        <button type="submit" id="sign-in">Sign in</button>
        </form>
        """

    static let overview = """
        <section>
        <h2>Listeners and tunnel</h2>
        <p class="banner {{#ready}}good{{/ready}}{{^ready}}bad{{/ready}}" id="readiness">
        {{#ready}}Ready{{/ready}}{{^ready}}Not ready{{/ready}}</p>
        <ul class="plain">{{#readiness}}<li><code>{{line}}</code></li>{{/readiness}}</ul>
        </section>
        <section>
        <h2>Projects</h2>
        <table id="projects"><thead><tr><th>Project</th><th>Description</th><th>Created</th></tr></thead><tbody>
        {{#projects}}<tr><td><a href="/console/projects/{{slug}}">{{slug}}</a></td><td>{{description}}</td>
        <td>{{created}}</td></tr>{{/projects}}
        {{^projects}}<tr><td colspan="3">No project is visible to you.</td></tr>{{/projects}}
        </tbody></table>
        {{#next}}<p><a href="{{next}}" rel="next">More projects</a></p>{{/next}}
        </section>
        """

    static let project = """
        <p>{{description}}</p>
        <div class="cards">
        <div class="card"><h3>Open PAM sessions</h3>{{#openSessions}}{{#denied}}<p class="muted">{{denied}}</p>{{/denied}}
        {{^denied}}<p class="big" id="open-sessions">{{count}}</p>{{/denied}}{{/openSessions}}</div>
        <div class="card"><h3>Grants active now</h3>{{#grants}}{{#denied}}<p class="muted">{{denied}}</p>{{/denied}}
        {{^denied}}<p class="big" id="active-grants">{{count}}</p>{{/denied}}{{/grants}}</div>
        <div class="card"><h3>CAs</h3>{{#cas}}{{#denied}}<p class="muted">{{denied}}</p>{{/denied}}
        {{^denied}}<p class="big">{{count}}</p>{{/denied}}{{/cas}}</div>
        <div class="card"><h3>PAM resources</h3>{{#resources}}{{#denied}}<p class="muted">{{denied}}</p>{{/denied}}
        {{^denied}}<p class="big">{{count}}</p>{{/denied}}{{/resources}}</div>
        </div>
        <section><h2>Nearest certificate expiries</h2>
        {{#expiries}}{{#denied}}<p class="muted">{{denied}}</p>{{/denied}}{{^denied}}
        <table id="expiries"><thead><tr><th>Common name</th><th>Expires</th><th>Left</th></tr></thead><tbody>
        {{#rows}}<tr class="{{#soon}}soon{{/soon}}"><td><a href="{{href}}">{{commonName}}</a></td><td>{{notAfter}}</td>
        <td>{{daysLeft}}</td></tr>{{/rows}}{{^rows}}<tr><td colspan="3">No active certificate.</td></tr>{{/rows}}
        </tbody></table>{{/denied}}{{/expiries}}
        </section>
        <section><h2>Grants active now</h2>
        {{#grants}}{{#denied}}<p class="muted">{{denied}}</p>{{/denied}}{{^denied}}
        <table id="grants"><thead><tr><th>Identity</th><th>Resource</th><th>Account</th><th>Until</th><th>Approved by</th>
        <th>Reason</th></tr></thead><tbody>
        {{#rows}}<tr><td>{{identity}}</td><td>{{resource}}</td><td>{{account}}</td><td>{{expires}}</td><td>{{decidedBy}}</td>
        <td>{{reason}}</td></tr>{{/rows}}{{^rows}}<tr><td colspan="6">None.</td></tr>{{/rows}}
        </tbody></table>{{/denied}}{{/grants}}
        </section>
        <section><h2>Open PAM sessions</h2>
        {{#openSessions}}{{#denied}}<p class="muted">{{denied}}</p>{{/denied}}{{^denied}}
        <table><thead><tr><th>Started</th><th>Identity</th><th>Resource</th><th>Account</th><th></th></tr></thead><tbody>
        {{#rows}}<tr><td>{{started}}</td><td>{{identity}}</td><td>{{resource}}</td><td>{{account}}</td>
        <td><a href="{{href}}">watch</a></td></tr>{{/rows}}{{^rows}}<tr><td colspan="5">None.</td></tr>{{/rows}}
        </tbody></table>{{/denied}}{{/openSessions}}
        </section>
        """

    static let sessions = """
        <form method="get" class="filters" id="session-filters">
        {{#filters}}
        <label>Since <input name="since" value="{{since}}" placeholder="2026-01-31"></label>
        <label>Until <input name="until" value="{{until}}" placeholder="2026-02-01T00:00:00Z"></label>
        <label>Identity <input name="identity" value="{{identity}}"></label>
        <label>Resource <input name="resource" value="{{resource}}"></label>
        <label>Account <input name="account" value="{{account}}"></label>
        {{/filters}}
        <label>End reason <select name="end"><option value="">any</option>
        {{#endReasons}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{value}}</option>{{/endReasons}}
        </select></label>
        <button type="submit">Filter</button>
        </form>
        <table id="sessions"><thead><tr><th>Started</th><th>Duration</th><th>Identity</th><th>Resource</th><th>Account</th>
        <th>Client</th><th>Statements</th><th>Ended because</th><th></th></tr></thead><tbody>
        {{#rows}}<tr data-session="{{id}}"><td>{{started}}</td><td>{{#running}}<span class="live">running</span>{{/running}}{{duration}}</td>
        <td>{{identity}}</td><td>{{resource}}</td><td>{{account}}</td><td>{{client}}</td><td>{{statementsCount}}</td>
        <td>{{endReason}}</td><td><a href="{{href}}">replay</a></td></tr>{{/rows}}
        {{^rows}}<tr><td colspan="9" id="no-sessions">No session matches.</td></tr>{{/rows}}
        </tbody></table>
        <p class="muted">{{shown}} shown, oldest last. {{#next}}<a href="{{next}}" rel="next">Older sessions</a>{{/next}}</p>
        """

    static let replay = """
        {{#integrity_complete}}<p class="banner good" id="integrity">Recording complete: its signed manifest matches.</p>{{/integrity_complete}}
        {{#integrity_running}}<p class="banner warn" id="integrity">Session in progress: this is what has been recorded so far,
        and new statements appear as they are recorded.</p>{{/integrity_running}}
        {{#integrity_incomplete}}<p class="banner warn" id="integrity">Recording incomplete: {{integrityDetail}}</p>{{/integrity_incomplete}}
        {{#integrity_tampered}}<p class="banner bad" id="integrity">Recording TAMPERED: {{integrityDetail}}. Only the events
        before the damage are shown.</p>{{/integrity_tampered}}
        <dl class="facts">
        <dt>Identity</dt><dd>{{identity}}</dd><dt>Resource</dt><dd>{{resource}}</dd><dt>Account</dt><dd>{{account}}</dd>
        <dt>Client</dt><dd>{{client}}</dd><dt>Started</dt><dd>{{started}}</dd>
        <dt>Ended</dt><dd>{{#running}}<span class="live" id="live">running</span>{{/running}}{{ended}} {{duration}}</dd>
        <dt>End reason</dt><dd id="end-reason">{{endReason}}</dd>
        <dt>Statements</dt><dd>{{statements}} in {{events}} events</dd>
        {{#legalHold}}<dt>Legal hold</dt><dd>{{legalHold}}</dd>{{/legalHold}}
        </dl>
        <table id="timeline" data-session="{{id}}" {{#running}}data-live="1"{{/running}}>
        <thead><tr><th>At</th><th>What</th><th>Statement</th><th>Outcome</th><th>Duration</th></tr></thead><tbody>
        {{{timelineRows}}}
        </tbody></table>
        """

    static let audit = """
        <p><a href="/console/audit/verify" id="verify-link">Verify the chain</a> (reads every event; slow on a large log)</p>
        <form method="get" class="filters" id="audit-filters">
        {{#filters}}
        <label>Type <input name="type" value="{{type}}" placeholder="pam.recording.read"></label>
        <label>Actor <input name="actor" value="{{actor}}"></label>
        <label>Project <input name="project" value="{{project}}"></label>
        <label>Since <input name="since" value="{{since}}"></label>
        <label>Until <input name="until" value="{{until}}"></label>
        {{/filters}}
        <button type="submit">Filter</button>
        </form>
        <table id="audit"><thead><tr><th>Time</th><th>Chain · seq</th><th>Event</th><th>Actor</th><th>Project</th><th>From</th>
        <th>Details</th></tr></thead><tbody>
        {{#rows}}<tr class="{{#denied}}failed{{/denied}}"><td>{{time}}</td><td><code>{{chain}} · {{sequence}}</code></td>
        <td>{{type}}</td><td>{{actor}}</td><td>{{#projectHref}}<a href="{{projectHref}}">{{project}}</a>{{/projectHref}}</td>
        <td>{{ip}}</td><td>{{#details}}<span class="kv">{{key}}={{#href}}<a href="{{href}}">{{value}}</a>{{/href}}{{^href}}{{value}}{{/href}}</span> {{/details}}</td></tr>{{/rows}}
        {{^rows}}<tr><td colspan="7">No event matches.</td></tr>{{/rows}}
        </tbody></table>
        {{#next}}<p><a href="{{next}}" rel="next">Older events</a></p>{{/next}}
        """

    static let verify = """
        {{#intact}}<p class="banner good" id="verification">Intact: {{checked}} events verified, every chain up to its newest
        sequence.</p>{{/intact}}
        {{^intact}}<p class="banner bad" id="verification">Broken: {{checked}} events checked.</p>
        <ul>{{#problems}}<li>{{line}}</li>{{/problems}}</ul>{{/intact}}
        """

    static let certificates = """
        <section><h2>Certificate authorities</h2>
        <table id="cas"><thead><tr><th>CA</th><th>Type</th><th>Status</th><th>Until</th><th>Revocation</th></tr></thead><tbody>
        {{#cas}}<tr><td title="{{dn}}">{{name}}</td><td>{{type}}</td><td>{{status}}</td><td>{{notAfter}}</td>
        <td><a href="{{crl}}">CRL</a> · <a href="/pki/ocsp">OCSP</a></td></tr>{{/cas}}
        {{^cas}}<tr><td colspan="5">No CA in this project.</td></tr>{{/cas}}
        </tbody></table></section>
        <section><h2>Certificates, soonest expiry first</h2>
        <form method="get" class="filters">
        <label>CA <select name="ca"><option value="">any</option>{{#cas}}<option value="{{id}}"{{#selected}} selected{{/selected}}>{{name}}</option>{{/cas}}</select></label>
        <label>Profile <select name="profile"><option value="">any</option>{{#profiles}}<option value="{{id}}"{{#selected}} selected{{/selected}}>{{slug}} ({{enrollment}})</option>{{/profiles}}</select></label>
        <label>Status <select name="status"><option value="">any</option>{{#statuses}}<option{{#selected}} selected{{/selected}}>{{value}}</option>{{/statuses}}</select></label>
        <label>Name <input name="name" value="{{name}}"></label>
        <button type="submit">Filter</button>
        </form>
        <table id="certificates"><thead><tr><th>Common name</th><th>CA</th><th>Profile</th><th>Expires</th><th>Left</th>
        <th>Status</th></tr></thead><tbody>
        {{#rows}}<tr class="{{#soon}}soon{{/soon}}{{#revoked}} failed{{/revoked}}"><td><a href="{{href}}">{{commonName}}</a></td>
        <td>{{ca}}</td><td>{{profile}}</td><td>{{notAfter}}</td><td>{{daysLeft}}</td>
        <td>{{status}}{{#revocationReason}} ({{revocationReason}}){{/revocationReason}}</td></tr>{{/rows}}
        {{^rows}}<tr><td colspan="6">No certificate matches.</td></tr>{{/rows}}
        </tbody></table>
        {{#next}}<p><a href="{{next}}" rel="next">Later expiries</a></p>{{/next}}
        </section>
        """

    static let certificate = """
        <dl class="facts">
        <dt>Subject</dt><dd>{{subject}}</dd><dt>Names</dt><dd>{{altNames}}</dd><dt>Serial</dt><dd><code>{{serial}}</code></dd>
        <dt>Valid</dt><dd>{{notBefore}} to {{notAfter}} ({{daysLeft}})</dd>
        <dt>Status</dt><dd id="status">{{status}}{{#revokedAt}} since {{revokedAt}}{{/revokedAt}}{{#revocationReason}}
        ({{revocationReason}}){{/revocationReason}}</dd>
        {{#crl}}<dt>Revocation</dt><dd><a href="{{crl}}">CRL</a> · <a href="/pki/ocsp">OCSP</a></dd>{{/crl}}
        </dl>
        <pre class="pem">{{pem}}</pre>
        """

    static let kmip = """
        <section><h2>KMIP clients</h2>
        {{#clients}}{{#denied}}<p class="muted">{{denied}}</p>{{/denied}}{{^denied}}
        <p class="muted">Identities of this project ({{members}} members) that log in with a certificate of the KMIP client
        CA (serial {{ca}}, until {{caNotAfter}}).</p>
        <table id="kmip-clients"><thead><tr><th>Identity</th><th>Certificate names</th><th>Roles</th></tr></thead><tbody>
        {{#rows}}<tr><td>{{name}}</td><td>{{commonNames}}</td><td>{{roles}}</td></tr>{{/rows}}
        {{^rows}}<tr><td colspan="3">None.</td></tr>{{/rows}}
        </tbody></table>{{/denied}}{{/clients}}
        </section>
        <section><h2>Managed objects</h2>
        <table id="kmip-objects"><thead><tr><th>Object</th><th>Type</th><th>Algorithm</th><th>State</th><th>Created</th>
        <th>Activated</th><th>Deactivated</th></tr></thead><tbody>
        {{#rows}}<tr><td><a href="{{href}}">{{names}}{{^names}}{{id}}{{/names}}</a></td><td>{{type}}</td>
        <td>{{algorithm}} {{length}}</td><td>{{state}}</td><td>{{created}}</td><td>{{activated}}</td><td>{{deactivated}}</td></tr>{{/rows}}
        {{^rows}}<tr><td colspan="7">No object.</td></tr>{{/rows}}
        </tbody></table>
        {{#next}}<p><a href="{{next}}" rel="next">More objects</a></p>{{/next}}
        </section>
        """

    static let kmipObject = """
        <dl class="facts">
        <dt>Unique identifier</dt><dd><code>{{id}}</code></dd><dt>Names</dt><dd>{{names}}</dd><dt>Groups</dt><dd>{{groups}}</dd>
        <dt>Type</dt><dd>{{type}}</dd><dt>Algorithm</dt><dd>{{algorithm}} {{length}}</dd><dt>Usage mask</dt><dd>{{usageMask}}</dd>
        <dt>State</dt><dd id="state">{{state}}</dd><dt>Created</dt><dd>{{created}}</dd><dt>Activated</dt><dd>{{activated}}</dd>
        <dt>Deactivated</dt><dd>{{deactivated}}</dd><dt>Compromised</dt><dd>{{compromised}}</dd>
        <dt>Destroyed</dt><dd>{{destroyed}}</dd><dt>Last change</dt><dd>{{lastChange}}</dd>
        {{#revocationMessage}}<dt>Revocation</dt><dd>{{revocationMessage}}</dd>{{/revocationMessage}}
        </dl>
        """
}
