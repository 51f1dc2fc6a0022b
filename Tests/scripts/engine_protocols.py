# The EngineAPI protocols as text, for the generators engine-doubles.py and engine-forwarding.py.
import glob, os, re

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '../..')
protos = ['Authenticator', 'BrowserSessions', 'AccessEngine', 'SecretsEngine', 'AuditEngine', 'KeyEngine', 'KMIPPKIEngine', 'PKIEngine',
          'ESTEngine', 'AlertEngine', 'ACMEEngine', 'SSHEngine', 'PAMEngine', 'PAMSessionEngine']
src = ''.join(open(f).read() for f in sorted(glob.glob(os.path.join(root, 'Sources/EngineAPI/*.swift'))))


def body(name):
    """The text between a protocol's braces."""
    m = re.search(r'public protocol %s\b[^{]*\{' % name, src)
    i = m.end(); depth = 1; j = i
    while depth:
        if src[j] == '{': depth += 1
        elif src[j] == '}': depth -= 1
        j += 1
    return src[i:j-1]


def funcs(b):
    """Each requirement of a protocol body as one line."""
    text = '\n'.join(l for l in b.split('\n') if not l.strip().startswith('//'))
    out = []
    for m in re.finditer(r'\n    func ', text):
        start = m.start() + 1
        nxt = text.find('\n    func ', start + 1)
        seg = text[start: nxt if nxt != -1 else len(text)]
        out.append(' '.join(x.strip() for x in seg.strip().split('\n') if x.strip() and not x.strip().startswith('// MARK')))
    return out
