/**
 * The viewer: one self-contained page (inline CSS and JS, no build step, no CDN) over the query API. Every value
 * from a log event is put in the page with `textContent`, never as HTML: trace ids and models are client input.
 * The API is addressed relative to the page, so the page works wherever the handler is mounted.
 */
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from './log-query';

const STYLE = `
:root{--bg:#f7f8fa;--panel:#fff;--fg:#17191c;--muted:#667085;--line:#e4e7ec;--hover:#f1f4f9;--accent:#4f46e5;
--ok:#0f7b3f;--ok-bg:#e5f6ec;--warn:#9a5b00;--warn-bg:#fff3da;--err:#b42318;--err-bg:#fde8e7;--gray-bg:#eef0f3;--gray:#5d6679;
--fb:#c2410c;--fb-bg:#ffedd5;--on-accent:#fff;color-scheme:light}
@media (prefers-color-scheme:dark){:root:not([data-theme=light]){--bg:#0e1013;--panel:#16191e;--fg:#e6e8eb;--muted:#8b93a1;
--line:#262b33;--hover:#1c2027;--accent:#8b87ff;--ok:#4ade80;--ok-bg:#12301f;--warn:#fbbf24;--warn-bg:#33280d;--err:#f87171;
--err-bg:#3a1616;--gray-bg:#23272f;--gray:#8b93a1;--fb:#fb923c;--fb-bg:#3a2212;--on-accent:#0e1013;color-scheme:dark}}
:root[data-theme=dark]{--bg:#0e1013;--panel:#16191e;--fg:#e6e8eb;--muted:#8b93a1;--line:#262b33;--hover:#1c2027;
--accent:#8b87ff;--ok:#4ade80;--ok-bg:#12301f;--warn:#fbbf24;--warn-bg:#33280d;--err:#f87171;--err-bg:#3a1616;
--gray-bg:#23272f;--gray:#8b93a1;--fb:#fb923c;--fb-bg:#3a2212;--on-accent:#0e1013;color-scheme:dark}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:13px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
header{display:flex;align-items:center;gap:12px;padding:10px 16px;background:var(--panel);border-bottom:1px solid var(--line);position:sticky;top:0;z-index:2}
header h1{font-size:15px;margin:0;font-weight:650;letter-spacing:-.01em}
header h1 span{color:var(--muted);font-weight:450}
.logo{width:22px;height:22px;border-radius:6px;background:linear-gradient(135deg,var(--accent),var(--fb));display:inline-block}
.spacer{flex:1}
#summary,#updated{color:var(--muted)}
button,input,select{font:inherit;color:inherit}
button{background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:4px 10px;cursor:pointer}
button:hover{background:var(--hover)}
button.primary{background:var(--accent);border-color:var(--accent);color:var(--on-accent)}
form#filters{display:flex;flex-wrap:wrap;gap:8px 10px;align-items:flex-end;padding:10px 16px;border-bottom:1px solid var(--line);background:var(--panel)}
form#filters label{display:flex;flex-direction:column;gap:2px;font-size:11px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
form#filters input,form#filters select{background:var(--bg);color:var(--fg);border:1px solid var(--line);border-radius:6px;padding:4px 7px;min-width:0;text-transform:none;letter-spacing:0;font-size:13px}
form#filters input:focus,form#filters select:focus{outline:2px solid var(--accent);outline-offset:-1px}
.w-trace{width:250px}.w-s{width:78px}.w-m{width:130px}.w-t{width:215px}.w-st{width:100px}.w-fw{width:180px}
/* The browser's own placeholder grey reads under 4.5:1 on the boxes' background. */
form#filters input::placeholder{color:var(--muted);opacity:1}
.range{display:flex;gap:4px}
#error{display:none;margin:10px 16px 0;padding:8px 12px;border-radius:6px;background:var(--err-bg);color:var(--err)}
#error.show{display:block}
#login{display:none;margin:16px;padding:14px;border:1px solid var(--line);border-radius:8px;background:var(--panel);max-width:460px}
#login.show{display:block}
#login input{width:100%;margin:8px 0;padding:6px 8px;border:1px solid var(--line);border-radius:6px;background:var(--bg)}
main{padding:10px 16px 40px;overflow-x:auto;container-type:inline-size}
table{width:100%;border-collapse:collapse;background:var(--panel);border:1px solid var(--line);border-radius:8px;overflow:hidden}
th{text-align:left;font-size:11px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);font-weight:600;padding:7px 10px;border-bottom:1px solid var(--line);background:var(--panel);white-space:nowrap}
td{padding:6px 10px;border-bottom:1px solid var(--line);white-space:nowrap;vertical-align:middle}
tbody tr.row{cursor:pointer}
tbody tr.row:hover{background:var(--hover)}
tbody tr.row.selected{background:var(--hover);box-shadow:inset 3px 0 0 var(--accent)}
tbody tr.row.fb{box-shadow:inset 3px 0 0 var(--fb)}
tbody tr.row.fb.selected{box-shadow:inset 3px 0 0 var(--fb),inset 6px 0 0 var(--accent)}
.num{text-align:right;font-variant-numeric:tabular-nums}
.trace{max-width:260px;overflow:hidden;text-overflow:ellipsis;display:inline-block;vertical-align:bottom;white-space:nowrap}
.clip{max-width:200px;overflow:hidden;text-overflow:ellipsis;display:inline-block;vertical-align:bottom;white-space:nowrap}
.chip{display:inline-block;white-space:nowrap;padding:1px 7px;border-radius:999px;font-size:12px;font-weight:600;font-variant-numeric:tabular-nums}
.broke{margin-left:4px}.tries{margin-left:4px;white-space:nowrap}.s2{background:var(--ok-bg);color:var(--ok)}.s4{background:var(--warn-bg);color:var(--warn)}.s5{background:var(--err-bg);color:var(--err)}.s0{background:var(--gray-bg);color:var(--gray)}
.badge-fallback{display:inline-block;margin-left:6px;padding:0 6px;border-radius:4px;background:var(--fb-bg);color:var(--fb);font-size:11px;font-weight:650;letter-spacing:.02em}
.sub{color:var(--muted)}
.empty{padding:30px;text-align:center;color:var(--muted)}
#more{display:block;margin:12px auto}
#more[aria-busy=true]{cursor:progress;opacity:.6}
#detail{position:fixed;top:0;right:0;bottom:0;width:min(560px,100vw);background:var(--panel);border-left:1px solid var(--line);box-shadow:-12px 0 30px rgba(0,0,0,.12);transform:translateX(105%);transition:transform .15s ease,visibility 0s linear .15s;visibility:hidden;z-index:3;overflow:auto;padding:16px 18px}
#detail.open{transform:none;visibility:visible;transition:transform .15s ease}
@media (prefers-reduced-motion:reduce){#detail,#detail.open{transition:none}}
@media (max-width:700px){header{flex-wrap:wrap}#status-line{order:9;flex-basis:100%}#totals{order:10}}
/* By the table area's own width (a window up to 1400 px, or a wider one with the drawer beside the table): a
   32-digit trace id stays whole, a long model is cut on one line. */
@container (max-width:1368px){.trace{max-width:235px}.clip{max-width:110px}#requests th:nth-child(1),#requests td:nth-child(1),#requests td:nth-child(3),#requests td:nth-child(4),#requests td:nth-child(5){white-space:normal}}
/* The drawer sits beside the list (as cards when little room is left), or, narrower, covers the whole window: never
   over half the list, hiding the statuses of rows still in view. */
@media (min-width:920px){body.drawer main,body.drawer #filters,body.drawer header{margin-right:560px}}
@media (max-width:919px){#detail{width:100vw}}
#detail h2{margin:0 0 2px;font-size:15px;overflow-wrap:anywhere}
#detail h3{margin:18px 0 6px;font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
dl{display:grid;grid-template-columns:130px 1fr;gap:4px 10px;margin:10px 0}
dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
/* The drawer's attempts: a card each (number; target, status, time; provider; model; error on a line of its own),
   at every width: seven columns do not fit the drawer, and the error, what it is opened for, went off its side. The
   column headers stay, for screen readers only. */
#attempts thead{display:block;position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap}
#attempts,#attempts tbody{display:block}
#attempts tr{display:grid;grid-template-columns:auto 1fr auto auto;grid-template-areas:"n target status time" "n provider provider provider" "n model model model" "n error error error";gap:2px 10px;padding:8px 4px;border-bottom:1px solid var(--line)}
#attempts td{padding:0;border:0;white-space:normal;overflow-wrap:anywhere;min-width:0}
#attempts td:nth-child(1){grid-area:n}#attempts td:nth-child(2){grid-area:target}#attempts td:nth-child(3){grid-area:provider}
#attempts td:nth-child(4){grid-area:model}#attempts td:nth-child(5){grid-area:status}#attempts td:nth-child(6){grid-area:time}
#attempts td:nth-child(7){grid-area:error}
tbody.busy{opacity:.45}
pre{tab-size:2}
pre:focus{outline:2px solid var(--line)}pre{background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:10px;overflow:auto;font-size:12px;max-height:360px}
.err-text{color:var(--err)}
.skip{position:absolute;left:8px;top:-40px;z-index:4;padding:6px 10px;border-radius:6px;background:var(--accent);color:var(--on-accent)}
.skip:focus{top:8px}
/* A narrow table area (a phone, or a laptop with the drawer beside the table): each request is a card (time and
   status; trace id; model; who served it; tokens, cost and latency), with no sideways scroll to reach its status or
   fallback marker; the column headers stay, for screen readers only. Wider, the table fits with its time, model and
   served-by cells wrapped. */
@container (max-width:960px){
#requests thead{display:block;position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap}
#requests,#requests tbody{display:block}
#requests tr.row{display:grid;grid-template-columns:1fr auto auto;grid-template-areas:"time time status" "trace trace trace" "model model model" "served served served" "tokens cost latency";gap:3px 10px;padding:8px 10px;border-bottom:1px solid var(--line)}
#requests tr.row td{padding:0;border:0;min-width:0}
#requests tr.row td:nth-child(1){grid-area:time}
#requests tr.row td:nth-child(2){grid-area:trace}
#requests tr.row td:nth-child(3){grid-area:model}
#requests tr.row td:nth-child(4){grid-area:served;white-space:normal}
#requests tr.row td:nth-child(5){grid-area:status;text-align:right}
#requests tr.row td:nth-child(6){grid-area:tokens;text-align:left}
#requests tr.row td:nth-child(6)::after{content:" tokens";color:var(--muted)}
#requests tr.row td:nth-child(7){grid-area:cost}
#requests tr.row td:nth-child(8){grid-area:latency}
#requests .trace,#requests .clip{max-width:100%}
#requests td.empty{display:block}
}
@media (max-width:960px){
main{padding:8px 8px 40px}
#detail dl{grid-template-columns:100px 1fr}
}
`;

const SCRIPT = `
'use strict';
var base = location.pathname.endsWith('/') ? location.pathname : location.pathname + '/';
var api = base + 'api/requests';
var summaryApi = base + 'api/summary';
var cursor = null, rows = [], selected = null, timer = null;
var PAGE = ${DEFAULT_PAGE_SIZE}, MAX_PAGE = ${MAX_PAGE_SIZE};
var $ = function (id) { return document.getElementById(id); };
// One per mount: two apps' viewers on one origin (/a/logs, /b/logs) each keep their own token.
var TOKEN_KEY = 'switchyard-logs-token:' + base;

// The tab's token: in its sessionStorage, or in this page alone where the browser refuses the site's storage
// (blocked site data), which must not stop the page: reading it throws there.
var pageToken = null;
function getToken() { try { return sessionStorage.getItem(TOKEN_KEY); } catch (err) { return pageToken; } }
function setToken(t) {
  pageToken = t;
  try { if (t === null) sessionStorage.removeItem(TOKEN_KEY); else sessionStorage.setItem(TOKEN_KEY, t); } catch (err) { /* kept in the page */ }
}
// A token in the URL fragment (never sent to servers) is kept in this tab's storage, then removed from the address
// bar (the browser's history still has the link: a long-lived token belongs in the form, not in a bookmark).
var m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
if (m) {
  // A mangled link (bad percent-encoding) must not stop the page: the token is then asked for.
  try { setToken(decodeURIComponent(m[1])); } catch (err) { /* ignored */ }
  history.replaceState(null, '', location.pathname + location.search);
}

function el(tag, cls, children, title) {
  var node = document.createElement(tag);
  if (cls) node.className = cls;
  if (title) node.title = title;
  (children || []).forEach(function (c) {
    if (c === null || c === undefined) return;
    // Not a node: text (an object another writer put where a string goes shows as JSON, not as a failed drawer).
    node.appendChild(c instanceof Node ? c : document.createTextNode(typeof c === 'object' ? JSON.stringify(c) : String(c)));
  });
  return node;
}
/** Sets a node's text only when it changes: a live region is read out at every write, even of the same words. */
function setText(node, text) { if (node.textContent !== text) node.textContent = text; }
function headers() {
  var t = getToken();
  // Not in Authorization: that header stays the browser's, for a proxy in front that asks for its own (Basic) login.
  return t ? { 'x-switchyard-logs-token': t } : {};
}
function pad(n, w) { return String(n).padStart(w || 2, '0'); }
/** Local date and time, to the ms: YYYY-MM-DD HH:MM:SS.mmm. */
function fmtDate(ms) {
  var d = new Date(ms);
  return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()) + '.' + pad(d.getMilliseconds(), 3);
}
/** The time alone for today, the date too for another day. */
function fmtTime(ms) {
  var full = fmtDate(ms);
  return new Date(ms).toDateString() === new Date().toDateString() ? full.slice(11) : full;
}
/** The browser's offset from UTC at a time (times are shown in it; tooltips and the event carry UTC): a time on the
 * other side of a daylight-saving change has another. */
function offsetAt(ms) {
  var m = -new Date(ms).getTimezoneOffset(), a = Math.abs(m);
  return m === 0 ? 'UTC' : 'UTC' + (m < 0 ? '-' : '+') + pad(Math.floor(a / 60)) + ':' + pad(a % 60);
}
/** The browser's time zone by name (Europe/Berlin), or its offset now where the browser names none. */
var ZONE = (function () {
  var name = '';
  try { name = Intl.DateTimeFormat().resolvedOptions().timeZone || ''; } catch (err) { name = ''; }
  return name === 'UTC' || name === 'Etc/UTC' ? 'UTC' : name || offsetAt(Date.now());
})();
/** A count with the browser's thousands separators: 1,280,000, not 1280000. */
function fmtCount(n) { return typeof n === 'number' ? n.toLocaleString() : String(n); }
function fmtMs(ms) { return ms >= 1000 ? (ms / 1000).toFixed(2) + ' s' : Math.round(ms) + ' ms'; }
function fmtCost(c) {
  if (c === null || c === undefined) return '—';
  if (c === 0) return '$0';
  // Three significant digits, in plain decimals (the cost filter refuses an exponent): $0.00000015, not $1.50e-7.
  return c < 0.01 ? '$' + Number(c.toPrecision(3)).toFixed(12).replace(/0+$/, '') : '$' + c.toFixed(4);
}
function statusChip(s) {
  var cls = s >= 500 ? 's5' : s === 499 ? 's0' : s >= 400 ? 's4' : s >= 200 && s < 300 ? 's2' : 's0';
  return el('span', 'chip ' + cls, [s === null ? '—' : s]);
}
/** A target path that may break only between its steps (targets[0].targets[1]), never inside targets[0]. */
function atDots(path) {
  return path.split('.').reduce(function (parts, step, i) { return parts.concat(i ? [document.createElement('wbr'), '.' + step] : [step]); }, []);
}
/**
 * Values from an event (a caller's model name, an upstream's message), each isolated for the bidi algorithm and joined
 * by sep: a right-to-left override in one (U+202E) must not reverse the text after it, e.g. turn "· 503" into "305 ·".
 */
function isolated(values, sep) {
  var out = [];
  values.forEach(function (v) {
    if (v === null || v === undefined || v === '') return;
    if (out.length) out.push(sep);
    out.push(el('bdi', null, [v]));
  });
  return out;
}
/** What an upstream said with its error answer; an event another writer shaped otherwise shows as it is. */
function upstreamSaid(u) {
  if (u === null || u === undefined) return [];
  if (typeof u !== 'object') return isolated([String(u)]);
  return isolated([u.code || null, typeof u.message === 'string' ? u.message : ''], ': ');
}
/** The upstream's error beside Switchyard's: its code, and its message unless the one shown already says it. */
function upstreamBeside(u, shown) {
  var says = function (text) { return typeof text === 'string' && text !== '' && String(shown).indexOf(text) < 0 ? text : ''; };
  if (typeof u !== 'object') return isolated([says(String(u))]);
  return isolated([u.code || null, says(u.message)], ': ');
}
function providerName(p) { return p === 'azure-openai' ? 'Azure OpenAI' : p === 'openai' ? 'OpenAI' : p; }

var TEXT_FILTERS = ['traceId', 'status', 'failedStatus', 'configId', 'model', 'minCostUsd', 'maxCostUsd', 'minTokens', 'maxTokens'];
var CHOICE_FILTERS = ['fallback', 'provider', 'failedProvider'];
var FILTERS = TEXT_FILTERS.concat(CHOICE_FILTERS, ['from', 'to', 'failedError']);
// The default config has no id: the Config box names it so (the API's configId= with nothing after it).
var DEFAULT_CONFIG = '(default)';
// The codes the box suggests, by their lower case: one typed in another case is searched as it is logged (the API
// matches codes exactly). Others are sent as typed: an upstream's own code may have capitals (Azure's DeploymentNotFound).
var KNOWN_CODES = Object.create(null); // no prototype: "constructor" typed in the box is no known code
Array.prototype.forEach.call($('failed-errors').options, function (o) { KNOWN_CODES[o.value.toLowerCase()] = o.value; });
/** Why the search cannot be what was meant (a typo in "Failed with"), or ''. The API would take any text as a code. */
function searchProblem(p) {
  var code = p.get('failedError');
  if (code === null || /^[A-Za-z][A-Za-z0-9_]*$/.test(code)) return '';
  return 'Failed with takes a status (503), a class (5xx) or an error code (letters, digits and _, such as insufficient_quota): "' + code + '" is none of these.';
}
// A shared link's from/to, exact to the millisecond, while the minute-precision box still shows them unchanged.
var exactTime = {};
function filterParams() {
  var f = $('filters'), p = new URLSearchParams();
  TEXT_FILTERS.forEach(function (k) {
    var v = f.elements[k].value.trim();
    // A cost copied from the table comes with its dollar sign.
    if ((k === 'minCostUsd' || k === 'maxCostUsd') && v.charAt(0) === '$') v = v.slice(1);
    if (k === 'configId' && v === DEFAULT_CONFIG) p.set(k, '');
    // One box for how an attempt failed: a status or class, else an error code (a timeout has no status).
    else if (k === 'failedStatus' && v !== '' && !/^(?:\\d+|[1-5]xx)$/i.test(v)) {
      if (KNOWN_CODES[v.toLowerCase()]) f.elements[k].value = v = KNOWN_CODES[v.toLowerCase()];
      p.set('failedError', v);
    }
    else if (v !== '') p.set(k, v);
  });
  CHOICE_FILTERS.forEach(function (k) { if (f.elements[k].value) p.set(k, f.elements[k].value); });
  // The inputs have minute precision and the bounds are inclusive: "To 12:05" means up to 12:05:59.999.
  ['from', 'to'].forEach(function (k) {
    var v = f.elements[k].value, exact = exactTime[k];
    if (exact && exact.shown === v) p.set(k, exact.value);
    else if (v) p.set(k, String(new Date(v).getTime() + (k === 'to' ? 59999 : 0)));
  });
  return p;
}
/** Epoch ms of a from/to in a URL: epoch ms, or ISO 8601 read as the API reads it (UTC unless it names an offset). */
function timeOf(v) {
  if (/^-?\\d+$/.test(v)) return Number(v);
  return Date.parse(/T[^Z+-]*$/.test(v) ? v + 'Z' : v);
}
// What the page could not take from a link as it is (a filter given twice): said above the rows it loads.
var linkNote = '';
function fillFilters() {
  var f = $('filters'), p = new URLSearchParams(location.search), seen = {};
  exactTime = {};
  linkNote = '';
  p.forEach(function (v, k) {
    // Only the filters' own fields: the form's elements collection also answers to names like length or item.
    if (FILTERS.indexOf(k) < 0) return;
    var input = f.elements[k === 'failedError' ? 'failedStatus' : k];
    if (!input) return;
    if (seen[k]) linkNote = 'The link gives ' + k + ' more than once: the last one is used.';
    // One box holds either: a link with both is searched by the later one, and says so.
    else if ((k === 'failedError' && seen.failedStatus) || (k === 'failedStatus' && seen.failedError)) linkNote = 'The link gives both failedStatus and failedError, which the page searches one at a time: ' + k + ' is used.';
    seen[k] = true;
    if (k === 'from' || k === 'to') {
      var d = new Date(timeOf(v));
      // Not a time: sent as it is, for the API to refuse (with its reason), rather than dropped to "any time".
      if (isNaN(d)) {
        input.value = '';
        exactTime[k] = { value: v, shown: '' };
        return;
      }
      input.value = fmtDate(d.getTime()).slice(0, 16).replace(' ', 'T');
      exactTime[k] = { value: v, shown: input.value };
    } else if (input.tagName === 'SELECT' && !Array.prototype.some.call(input.options, function (o) { return o.value === v; })) {
      // A value the page has no option for (a typo in a link) goes to the API as it is, to be refused there:
      // never silently widened to "any".
      input.appendChild(el('option', null, [v]));
      input.value = v;
    } else input.value = k === 'configId' && v === '' ? DEFAULT_CONFIG : v;
  });
}

// The alert is a live region: the same failure again (a live tick's) is not read out again every 5 s.
function showError(msg) { var e = $('error'); setText(e, msg || ''); e.className = msg ? 'show' : ''; }

var NOT_THE_API = 'The server answered with something other than the logs API (a sign-in page?).';
// A server (or a proxy) that never answers would leave "Loading…" on screen for good: given up after this long.
// Not the totals ('patient'): an aggregate over a big store may take longer, and the rows' figures show meanwhile.
var ANSWER_MS = 30000, NO_ANSWER = 'The server did not answer within ' + ANSWER_MS / 1000 + ' s.';
function request(url, patient) {
  var ctl = new AbortController(), late = patient ? null : setTimeout(function () { ctl.abort(); }, ANSWER_MS);
  // fetch's own failure text ("Failed to fetch") says nothing to someone reading logs.
  return fetch(url, { headers: headers(), credentials: 'same-origin', signal: ctl.signal }).catch(function () {
    throw new Error(ctl.signal.aborted ? NO_ANSWER : 'Could not reach the server.');
  }).then(function (res) {
    return res.json().catch(function () {
      // Its body stalled: as good as no answer.
      if (ctl.signal.aborted) throw new Error(NO_ANSWER);
      return {};
    }).then(function (body) {
      // A 401 of the logs endpoint's own (its challenge names its realm), not a proxy's or the host's login.
      if (res.status === 401 && /realm="switchyard-logs"/.test(res.headers.get('www-authenticate') || '')) {
        var had = getToken();
        setToken(null);
        // Live mode stops: its ticks would come back here every 5 s, over what is being typed.
        if ($('live').checked) { $('live').checked = false; clearInterval(timer); }
        // The token field is behind a drawer that covers the page: the drawer closes first.
        if (pageCovered()) close(false);
        if ($('login').className !== 'show') {
          $('token').value = '';
          $('login').className = 'show';
          $('token').focus();
        }
        throw new Error(had ? 'That token was not accepted: enter the logs token.' : 'A token is needed to read the logs.');
      }
      // The token is kept: it was not what was refused.
      if (res.status === 401) throw new Error('The app or a proxy in front refused the request (401), not the logs endpoint: sign in there, then reload.');
      if (!res.ok) {
        var e = body && body.error;
        throw new Error(e ? e.message + (e.param ? ' (' + e.param + ')' : '') : 'HTTP ' + res.status);
      }
      $('login').className = '';
      return body;
    });
  }).finally(function () { clearTimeout(late); }); // a failed request's timer too: it would abort nothing 30 s later
}

// 'apply' reads the form; 'refresh' and 'more' repeat the applied search, so a half-edited form never mixes in.
// Only the latest load's answer is shown: a slow page that arrives after a newer search or refresh is dropped.
// 'shown' is the search the rows on screen answer: only a refresh or "more" of that search builds on them.
var applied = null, shown = null, latest = 0;
// A new search on its way (its rows are not on screen yet), and why the last one failed: neither looks like "no match".
var pending = false, loadError = null, updatedAt = null;
// The last load's request while it is on its way: a live tick waits for it (a slow search over a big store would
// otherwise pile up one request per tick, each a query the store runs in turn).
var loading = null;
// "Load more"'s request while it is on its way: the button says so (aria-busy; aria-disabled, not disabled, which
// would drop the keyboard's focus from it) and further clicks wait for it.
var moreLoading = null;
function moreBusy(asked) {
  moreLoading = asked;
  var more = $('more'), done = function () {
    if (moreLoading !== asked) return;
    moreLoading = null;
    more.removeAttribute('aria-busy');
    more.removeAttribute('aria-disabled');
    more.textContent = 'Load more';
  };
  more.setAttribute('aria-busy', 'true');
  more.setAttribute('aria-disabled', 'true');
  more.textContent = 'Loading more…';
  asked.then(done, done);
}
function busy(on) {
  pending = on;
  $('rows').classList.toggle('busy', on);
  $('requests').setAttribute('aria-busy', String(on));
  if (!on) return;
  // An empty table says it is loading (not the last search's "no match" or failure); rows on screen are dimmed.
  if (rows.length === 0) { loadError = null; render(); }
  setText($('summary'), 'Loading…');
  // Totals of the rows on screen would count a search that is being replaced.
  $('totals').style.display = 'none';
}
// The totals over every match of a search (GET api/summary), once asked for with Totals: a live refresh of that
// search asks for them again; another search shows the loaded rows' figures until they are asked for.
// One at a time: a live tick waits for them as for the rows (an aggregate over a big store can outlast a tick).
var totals = null, totalsLoading = null, totalsFor = null;
function fetchTotals(search) {
  // The same search's totals on their way are shared; another search's are not waited for (their answer is dropped).
  if (totalsLoading && totalsFor === search) return totalsLoading;
  totalsFor = search;
  var asked = totalsLoading = request(summaryApi + (search ? '?' + search : ''), true).then(function (data) {
    if (!data || typeof data.requests !== 'number') throw new Error(NOT_THE_API);
    if (String(applied) !== search) return;
    // Timed by their own answer: rows refreshed since do not make older totals look newer.
    totals = { search: search, data: data, at: Date.now() };
    render();
  }).catch(function (err) {
    // Another search's failure is not this one's; this one's falls back to the loaded rows' figures.
    if (String(applied) !== search) return;
    totals = null;
    render();
    showError('Could not count the totals: ' + err.message);
  }).then(function () { clearTimeout(stale); if (totalsLoading === asked) totalsLoading = null; });
  // As for the rows: one that never settles (a stalled connection) holds live mode back for 30 s, not for good.
  var stale = setTimeout(function () { if (totalsLoading === asked) totalsLoading = null; }, 30000);
  return asked;
}
function load(mode, step) {
  var append = mode === 'more';
  if (mode === 'apply' || !applied) {
    applied = filterParams();
    var url = location.pathname + (applied.toString() ? '?' + applied : '');
    // A search the user makes is a step Back returns from; the first load, and Back itself, are not.
    if (step && url !== location.pathname + location.search) {
      // Made beside a drawer that has its own step (a phone turned sideways): the search takes that step's place.
      if (drawerEntry) {
        drawerEntry = false;
        history.replaceState(null, '', url);
      } else history.pushState(null, '', url);
    } else history.replaceState(history.state, '', url);
  }
  var search = String(applied);
  if (append && (!cursor || shown !== search)) return Promise.resolve();
  // One page more at a time: clicks while one is on its way (a slow store) would each ask again, and drop the last.
  if (append && moreLoading) return moreLoading;
  var problem = searchProblem(applied);
  var box = $('filters').elements.failedStatus;
  if (problem) box.setAttribute('aria-invalid', 'true');
  else box.removeAttribute('aria-invalid');
  var p = new URLSearchParams(applied);
  if (append) p.set('cursor', cursor);
  // A refresh of the rows on screen reloads them from the top, with room for a page of new ones: a request logged
  // late (a long stream is logged when it ends, under the time it started) shows up among them, never in a gap.
  else if (mode === 'refresh' && shown === search) p.set('limit', String(Math.min(MAX_PAGE, rows.length + PAGE)));
  // A later load of any kind makes this answer stale (dropped below), so the rows it extends are still the ones on
  // screen when it arrives.
  var seq = ++latest;
  var bottom = mode === 'refresh' && shown === search && rows.length ? rows[rows.length - 1].requestId : null;
  // The rows on screen answer another search: dimmed, and the summary says so, until this one's arrive.
  if (!append && shown !== search) busy(true);
  // Refused here as the API refuses a bad filter: said, and no rows under it.
  var asked = loading = problem ? Promise.reject(new Error(problem)) : request(api + '?' + p);
  if (append) moreBusy(asked);
  // One that never settles (a stalled connection) stops live mode only for a while: after 30 s ticks ask again.
  var settled = function () { clearTimeout(stale); if (loading === asked) loading = null; };
  var stale = setTimeout(settled, 30000);
  asked.then(settled, settled);
  return asked.then(function (page) {
    if (seq !== latest) return;
    // A 200 that is not the API's answer (a proxy's sign-in page once its session ran out): a failure, not rows.
    if (!page || !Array.isArray(page.data)) throw new Error(NOT_THE_API);
    busy(false);
    loadError = null;
    updatedAt = Date.now();
    showError(linkNote);
    linkNote = '';
    // A refresh ends where the rows on screen ended (with the same "Load more"): the page of room it asked for
    // holds new rows on top, not older ones below to grow the list with every refresh. With every match on screen
    // (no "Load more"), what is below the old bottom row can only be a request logged late: it is kept.
    var at = -1;
    if (bottom !== null && cursor) for (var i = 0; i < page.data.length && at < 0; i++) if (page.data[i].requestId === bottom) at = i;
    if (at >= 0) rows = page.data.slice(0, at + 1);
    else {
      rows = append ? rows.concat(page.data) : page.data;
      cursor = page.nextCursor;
    }
    shown = search;
    render();
    if (!append && totals && totals.search === search && cursor) return fetchTotals(search);
  }).catch(function (err) {
    if (seq !== latest) return;
    busy(false);
    showError(err.message);
    // The rows of another search must not stand under this one's filters; a failed refresh keeps its own rows, and
    // the time they were read.
    if (shown !== search) {
      rows = [];
      cursor = null;
      shown = search;
      loadError = err.message;
    } else if (rows.length === 0) loadError = err.message;
    render();
  });
}

/** Marks the open request's row, to the eye and to assistive tech. */
function markOpen() {
  Array.prototype.forEach.call($('rows').children, function (tr) {
    var on = selected !== null && tr.dataset.requestId === selected;
    tr.classList.toggle('selected', on);
    if (on) tr.setAttribute('aria-current', 'true');
    else tr.removeAttribute('aria-current');
  });
}
// What the rows on screen were drawn from: a live tick that brings nothing new leaves them as they are (the focus,
// the scroll, a screen reader's place in them).
var drawn = null;
/** Rebuilds the table when what it shows changed; the row named gets the focus, as does a rebuilt focused row. */
function render(focusId) {
  var body = $('rows'), active = document.activeElement, named = focusId !== undefined;
  if (!named) focusId = active && active.dataset && active.dataset.requestId;
  // With today's date: a time shows its date once it is no longer today's.
  var key = JSON.stringify([rows, loadError, pending, shown, new Date().toDateString()]);
  var rebuild = key !== drawn;
  drawn = key;
  if (rebuild) body.textContent = '';
  if (rebuild && rows.length === 0) {
    // No filter set and nothing found: the store is empty, which "no match" would hide.
    var td = el('td', 'empty', [loadError ? 'Could not load the logs: ' + loadError : pending ? 'Loading…' : shown === '' ? 'No requests are logged yet.' : 'No requests match these filters.']);
    td.colSpan = 8;
    body.appendChild(el('tr', null, [td]));
  }
  var fallbacks = 0, cost = 0, priced = 0, unpriced = 0;
  rows.forEach(function (e) {
    if (e.fallback) fallbacks++;
    // An unknown price never looks free: the total says how many requests it leaves out (core's costUnknown, as the
    // Totals count them: a failure nobody paid for is no unknown cost).
    if (typeof e.costUsd === 'number') { cost += e.costUsd; priced++; }
    else if (e.usage || (e.servedBy && (e.status < 300 || e.status === 499))) unpriced++;
    if (!rebuild) return;
    // When every target failed, the last one's error is what the client got: not "served".
    var failed = e.status >= 400;
    var served = e.servedBy
      ? [failed ? el('span', 'sub', ['error from ']) : null, el('span', null, [providerName(e.servedBy.provider)]), el('span', 'sub', [' · ']), el('span', 'sub clip', [e.servedBy.model], e.servedBy.model)]
      : [el('span', 'sub', ['not served'])];
    // The serving attempt: the last of its target that got a status (skipped targets may follow it).
    var servedAt = -1;
    if (e.servedBy) for (var k = e.attempts.length - 1; k >= 0 && servedAt < 0; k--) if (e.attempts[k].target === e.servedBy.target && e.attempts[k].status !== null) servedAt = k;
    // Targets, not attempts: a retry is one more attempt of the same target.
    var earlier = new Set();
    for (var j = 0; j < servedAt; j++) if (e.attempts[j].target !== e.servedBy.target) earlier.add(e.attempts[j].target);
    if (e.fallback) served.push(el('span', 'badge-fallback', ['↪ fallback'], (failed ? 'Answered by ' : 'Served by ') + (e.servedBy ? e.servedBy.target : '?') + ' after ' + earlier.size + ' earlier target(s) tried or skipped'));
    var u = e.usage;
    // Upstream calls, as x-switchyard-attempts counts them (a target with no deployment, or skipped as its circuit was open, called none).
    var tries = e.attempts.filter(function (a) { return !a.error || (a.error.code !== 'model_not_deployed' && a.error.code !== 'circuit_open'); }).length;
    // The answer started, then broke (a stream cut, an error event): the status alone would look healthy.
    var servedAttempt = servedAt >= 0 && e.status < 400 ? e.attempts[servedAt] : null;
    var broke = servedAttempt && servedAttempt.error ? servedAttempt.error : null;
    var tr = el('tr', 'row' + (e.fallback ? ' fb' : ''), [
      el('td', 'mono', [fmtTime(e.startedAt)], new Date(e.startedAt).toISOString()),
      el('td', null, [el('span', 'mono trace', [e.traceId], e.traceId)]),
      el('td', null, [el('span', 'clip', [e.model || '—'], e.model), e.stream ? el('span', 'sub', [' · stream']) : null]),
      el('td', null, served),
      el('td', null, [statusChip(e.status), broke ? el('span', 'chip s5 broke', ['broke'], broke.code + ': ' + broke.message) : null, tries > 1 ? el('span', 'sub tries', [tries + ' tries']) : null]),
      el('td', 'num', [u ? fmtCount(u.total_tokens) : '—'], u ? fmtCount(u.prompt_tokens) + ' prompt + ' + fmtCount(u.completion_tokens) + ' completion' : ''),
      el('td', 'num', [fmtCost(e.costUsd)]),
      el('td', 'num', [fmtMs(e.durationMs)]),
    ]);
    tr.dataset.requestId = e.requestId;
    tr.tabIndex = 0;
    // A row is a table row to assistive tech (its cells keep their column names): the hint says it opens.
    tr.setAttribute('aria-describedby', 'row-hint');
    tr.addEventListener('click', function () {
      // A drag that selected text in the row (a trace id being copied) is no click to open it.
      var sel = window.getSelection();
      if (sel && !sel.isCollapsed && tr.contains(sel.anchorNode)) return;
      open(e.requestId);
    });
    tr.addEventListener('keydown', function (ev) { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); open(e.requestId); } });
    body.appendChild(tr);
  });
  markOpen();
  var row = focusId ? rowOf(focusId) : null;
  if (named) { if (row && row !== document.activeElement) row.focus(); }
  // The focused row was rebuilt: its new one takes the focus where the page is (a live tick must not scroll the list).
  else if (row && active && !active.isConnected) row.focus({ preventScroll: true });
  var all = cursor && totals && totals.search === shown ? totals : null;
  var costText = function (known, none) { return known === 0 && none > 0 ? 'cost unknown' : fmtCost(known) + (none ? ' + ' + none + ' unpriced' : ''); };
  // The time of the figures stays out of the status (a live region): it changes at every tick, figures or not.
  var updated = function (at) { return at === null ? '' : ' · updated ' + fmtTime(at).slice(0, 8); };
  if (loadError || pending) setText($('summary'), loadError ? 'Could not load the logs' : 'Loading…');
  // Every match counted (asked for with Totals): how many, what it cost, since when; as of their own answer.
  else if (all) setText($('summary'), fmtCount(all.data.requests) + ' requests · ' + fmtCount(all.data.fallbacks) + ' fell back · ' + costText(all.data.costUsd, all.data.unpriced) + (all.data.firstStartedAt === null ? '' : ' · since ' + fmtTime(all.data.firstStartedAt)));
  // With more pages, the figures after the count are the loaded rows': said, as the count's + says it of the count.
  else setText($('summary'), rows.length + (cursor ? '+ requests · in the ' + rows.length + ' loaded: ' : rows.length === 1 ? ' request · ' : ' requests · ') + fallbacks + ' fell back · ' + costText(cost, unpriced));
  setText($('updated'), loadError || pending ? '' : updated(all ? all.at : updatedAt));
  $('more').style.display = cursor ? 'block' : 'none';
  var offer = cursor && !all && !loadError && !pending;
  // The button goes once the totals are in: the keyboard's focus moves on to Refresh rather than to nowhere.
  if (!offer && document.activeElement === $('totals')) $('refresh').focus();
  $('totals').style.display = offer ? '' : 'none';
}

// Only the latest opened request is shown: a slow answer for a row clicked before, or after a close, is dropped.
var opened = 0, openedFrom = null;
// Whether the history entry of a covering drawer is the current one; and a Back of our own that popstate must ignore.
var drawerEntry = false, ownBack = false;
function open(id) {
  selected = id;
  // Only the marks change: rebuilding the rows would drop a selection in them and the focus.
  markOpen();
  var seq = ++opened;
  // Where the focus was as it opened: the details take it on arrival only if it is still there (not in a filter
  // typed in meanwhile).
  openedFrom = document.activeElement;
  // Another request's details stay on screen no longer than its row stays selected.
  if ($('detail').className !== 'open' || $('detail-body').dataset.requestId !== id) {
    $('detail-body').textContent = '';
    $('detail-body').dataset.requestId = '';
    $('detail-body').appendChild(el('p', 'sub', ['Loading ' + id + '…']));
    $('detail').className = 'open';
    keepInPlace(id, function () { document.body.classList.add('drawer'); });
    fitDrawer();
  }
  // The drawer is a step Back closes, as it closes any panel over the list.
  if (!drawerEntry) {
    history.pushState({ drawer: id }, '', location.href);
    drawerEntry = true;
  }
  request(api + '/' + encodeURIComponent(id)).then(function (e) {
    if (seq !== opened) return;
    if (!e || !Array.isArray(e.attempts)) throw new Error(NOT_THE_API);
    showDetail(e);
  }).catch(function (err) {
    if (seq !== opened) return;
    showError(err.message);
    $('detail-body').textContent = '';
    $('detail-body').appendChild(el('p', 'sub', ['Could not load ' + id + ': ' + err.message]));
  });
}

function showDetail(e) {
  var d = $('detail-body');
  d.textContent = '';
  d.dataset.requestId = e.requestId;
  var u = e.usage;
  var facts = [
    ['Request id', el('span', 'mono', [e.requestId])],
    ['Trace id', el('span', 'mono', [e.traceId])],
    ['Started', (offsetAt(e.startedAt) === 'UTC' ? '' : fmtDate(e.startedAt) + ' (' + offsetAt(e.startedAt) + ') · ') + new Date(e.startedAt).toISOString()],
    ['Duration', fmtMs(e.durationMs)],
    ['Status', statusChip(e.status)],
    ['Config', e.configId === null ? DEFAULT_CONFIG : el('bdi', null, [e.configId])],
    ['Model', el('span', null, isolated([e.model || '—']).concat(e.stream ? [' (stream)'] : []))],
    ['Served by', e.servedBy ? el('span', null, isolated([providerName(e.servedBy.provider), e.servedBy.model, e.servedBy.target, e.servedBy.virtualKey], ' · ')) : 'not served'],
    ['Fallback', e.fallback ? el('span', 'badge-fallback', ['↪ fell back']) : 'no'],
    ['Tokens', u ? fmtCount(u.total_tokens) + ' (' + fmtCount(u.prompt_tokens) + ' prompt + ' + fmtCount(u.completion_tokens) + ' completion)' : '—'],
    ['Cost', fmtCost(e.costUsd)],
  ];
  var dl = el('dl');
  facts.forEach(function (f) { dl.appendChild(el('dt', null, [f[0]])); dl.appendChild(el('dd', null, [f[1]])); });
  d.appendChild(el('h2', null, isolated([e.model || 'request']).concat([' · ' + e.status])));
  d.appendChild(el('div', 'sub mono', [e.requestId]));
  d.appendChild(dl);
  d.appendChild(el('h3', null, ['Attempts (' + e.attempts.length + ')']));
  var tbody = el('tbody');
  e.attempts.forEach(function (a, i) {
    // Switchyard's code (upstream_error_event) beside the upstream's own (insufficient_quota), which "Failed with"
    // finds it by.
    var beside = a.error && a.upstreamError ? upstreamBeside(a.upstreamError, a.error.message) : [];
    tbody.appendChild(el('tr', null, [
      el('td', 'num', [i + 1]),
      el('td', 'mono', atDots(a.target)),
      el('td', null, [providerName(a.provider), a.virtualKey ? el('div', 'sub', [a.virtualKey]) : null]),
      el('td', null, [a.model]),
      el('td', null, [statusChip(a.status)]),
      el('td', 'num', [fmtMs(a.durationMs)]),
      el('td', 'err-text', (a.error ? isolated([a.error.code, a.error.message], ': ') : upstreamSaid(a.upstreamError)).concat([
        beside.length ? el('div', null, ['upstream: '].concat(beside)) : null,
        a.upstreamRequestId ? el('div', 'sub mono', ['request id ', el('bdi', null, [a.upstreamRequestId])]) : null,
      ])),
    ]));
  });
  var thead = el('thead', null, [el('tr', null, ['#', 'Target', 'Provider', 'Model', 'Status', 'Time', 'Error'].map(function (h) { return el('th', null, [h]); }))]);
  var t = el('table', null, [thead, tbody]);
  t.id = 'attempts';
  d.appendChild(t);
  d.appendChild(el('h3', null, ['Event']));
  var json = el('pre', 'mono', [JSON.stringify(e, null, 2)]);
  json.tabIndex = 0; // scrollable from the keyboard
  d.appendChild(json);
  $('detail').className = 'open';
  document.body.classList.add('drawer');
  var now = document.activeElement;
  var stayed = !now || now === document.body || now === openedFrom || $('detail').contains(now) ||
    // The row it was opened from, rebuilt by a live tick meanwhile.
    (openedFrom && now.dataset && openedFrom.dataset && now.dataset.requestId !== undefined && now.dataset.requestId === openedFrom.dataset.requestId);
  if (stayed) $('close').focus();
}

/**
 * As wide as the screen (a phone), the drawer covers the page: the page leaves the tab order until the drawer closes
 * or the window widens (a phone turned), and comes back to it as the drawer stops covering it.
 */
function fitDrawer() {
  var covers = $('detail').className === 'open' && $('detail').offsetWidth >= window.innerWidth;
  if (covers === pageCovered()) return;
  coverPage(covers);
  if (covers) $('close').focus();
}
var lastWidth = window.innerWidth;
window.addEventListener('resize', function () {
  fitDrawer();
  // A window snapped narrower turns the rows into cards: the row in hand stays in view. Only for a new width: a
  // phone's address bar hiding as the list scrolls changes the height, and must not pull the list back.
  if (window.innerWidth === lastWidth) return;
  lastWidth = window.innerWidth;
  var row = document.activeElement && document.activeElement.dataset && document.activeElement.dataset.requestId ? document.activeElement : rowOf(selected);
  if (row) row.scrollIntoView({ block: 'nearest' });
});
function rowOf(id) {
  return id ? Array.prototype.find.call($('rows').children, function (tr) { return tr.dataset.requestId === id; }) || null : null;
}
/** Runs a layout change (the drawer opening or closing, the rows turning into cards) with row 'id' kept where it was on screen. */
function keepInPlace(id, change) {
  var before = rowOf(id), top = before ? before.getBoundingClientRect().top : 0;
  change();
  var after = rowOf(id);
  if (before && after) window.scrollBy(0, after.getBoundingClientRect().top - top);
}
/** Whether the drawer covers the page (the page is inert behind it). */
function pageCovered() { return document.querySelector('main').inert; }
function coverPage(on) {
  [$('skip'), document.querySelector('header'), $('filters'), document.querySelector('main')].forEach(function (node) { node.inert = on; });
}
function close(refocus) {
  opened++;
  var back = selected;
  $('detail').className = '';
  coverPage(false);
  selected = null;
  // Back to the row the drawer was opened from (unless the focus is elsewhere, in a filter being typed in).
  keepInPlace(back, function () {
    document.body.classList.remove('drawer');
    render(refocus === false ? undefined : back);
  });
  // Closed otherwise than by Back: its history entry goes too, or the next Back would seem to do nothing.
  if (drawerEntry) {
    drawerEntry = false;
    ownBack = true;
    history.back();
  }
}

$('filters').addEventListener('submit', function (ev) { ev.preventDefault(); load('apply', true); });
$('clear').addEventListener('click', function () { $('filters').reset(); exactTime = {}; load('apply', true); });
// Back and Forward go through the searches made: the form follows the address bar.
window.addEventListener('popstate', function (ev) {
  if (ownBack) { ownBack = false; return; }
  // Back from a drawer's own step closes it; Forward onto one opens its request again.
  var reopen = ev.state && ev.state.drawer;
  if (drawerEntry) {
    drawerEntry = false;
    if ($('detail').className === 'open') close();
  }
  drawerEntry = Boolean(reopen);
  // The search the address bar now names, unless it is the one on screen (a step to or from a drawer's own, or
  // several steps at once that land on it).
  if (!applied || location.search.slice(1) !== String(applied)) {
    $('filters').reset();
    fillFilters();
    load('apply');
  }
  if (reopen) open(reopen);
});
// Past the filters to the first request, without a #fragment in the address bar (Back goes through searches).
$('skip').addEventListener('click', function (ev) {
  ev.preventDefault();
  var first = document.querySelector('tr.row');
  if (first) first.focus();
  else { $('requests').tabIndex = -1; $('requests').focus(); }
});
$('refresh').addEventListener('click', function () { load('refresh'); });
$('more').addEventListener('click', function () { load('more'); });
$('totals').addEventListener('click', function () { if (shown !== null) fetchTotals(shown); });
$('close').addEventListener('click', close);
document.addEventListener('keydown', function (ev) {
  if (ev.key !== 'Escape' || !(selected || $('detail').className === 'open')) return;
  // Typing in a filter stays there; from the panel, the focus goes back to its row.
  // (Or from anywhere while it covers the page: nothing else could hold the focus.)
  var inPanel = $('detail').contains(document.activeElement) || pageCovered();
  close(inPanel);
});
$('live').addEventListener('change', function (ev) {
  clearInterval(timer);
  if (ev.target.checked) timer = setInterval(function () {
    // A tick rebuilds the table: not while text in it is selected (a trace id being copied).
    var sel = window.getSelection();
    if (sel && !sel.isCollapsed && $('requests').contains(sel.anchorNode)) return;
    if (!loading && !totalsLoading) load('refresh');
  }, 5000);
});
// The theme chosen is remembered in this browser (storage may be refused: the system's theme then stays).
try { var theme = localStorage.getItem('switchyard-logs-theme'); if (theme === 'light' || theme === 'dark') document.documentElement.dataset.theme = theme; } catch (err) { /* ignored */ }
$('theme').addEventListener('click', function () {
  var root = document.documentElement, dark = root.dataset.theme ? root.dataset.theme === 'dark' : matchMedia('(prefers-color-scheme: dark)').matches;
  root.dataset.theme = dark ? 'light' : 'dark';
  try { localStorage.setItem('switchyard-logs-theme', root.dataset.theme); } catch (err) { /* ignored */ }
});
$('login').addEventListener('submit', function (ev) {
  ev.preventDefault();
  setToken($('token').value.trim());
  load('refresh');
});
$('time-col').textContent = 'Time (' + ZONE + ')';
// The page keeps its rows in place itself (the drawer's steps are not pages to scroll back to; a search's rows load anew).
history.scrollRestoration = 'manual';
fillFilters();
load('apply');
// Reloaded on a drawer's step: its request opens again, so that Back still closes something.
if (history.state && history.state.drawer) {
  drawerEntry = true;
  open(history.state.drawer);
}
`;

const BODY = `
<a href="#requests" class="skip" id="skip">Skip to the requests</a>
<header>
  <span class="logo"></span><h1>Switchyard <span>request logs</span></h1>
  <span class="spacer"></span><span id="status-line"><span id="summary" role="status"></span><span id="updated"></span></span><button type="button" id="totals" title="Count every request these filters match, not only the loaded ones">Totals</button>
  <label class="sub"><input type="checkbox" id="live"> live</label>
  <button type="button" id="refresh">Refresh</button><button type="button" id="theme" title="Light / dark" aria-label="Light or dark theme">◐</button>
</header>
<form id="filters" autocomplete="off">
  <label>Trace id<input name="traceId" class="w-trace mono" placeholder="exact trace id"></label>
  <label>Status<input name="status" class="w-st" placeholder="429 or 5xx"></label>
  <label>Fallback<select name="fallback"><option value="">any</option><option value="true">fell back</option><option value="false">no fallback</option></select></label>
  <label>Provider<select name="provider"><option value="">any</option><option value="openai">OpenAI</option><option value="azure-openai">Azure OpenAI</option></select></label>
  <label>Failed at<select name="failedProvider" title="Requests with a failed attempt at this provider, whoever served them"><option value="">any</option><option value="openai">OpenAI</option><option value="azure-openai">Azure OpenAI</option></select></label>
  <label>Failed with<input name="failedStatus" class="w-fw" placeholder="503 or 5xx" list="failed-errors" title="Requests with a failed attempt that got this status, or ended with this error code, such as upstream_timeout (at the provider of Failed at, if set)"></label>
  <datalist id="failed-errors"><option value="429"><option value="5xx"><option value="upstream_timeout"><option value="upstream_unreachable"><option value="stream_interrupted"><option value="upstream_error_event"><option value="insufficient_quota"><option value="rate_limit_exceeded"></datalist>
  <label>Model<input name="model" class="w-m" placeholder="e.g. gpt-4o"></label>
  <label>Config<input name="configId" class="w-s" placeholder="id" title="A config id, or (default) for the default config"></label>
  <label>From<input name="from" type="datetime-local" class="w-t"></label>
  <label>To<input name="to" type="datetime-local" class="w-t"></label>
  <label>Cost USD<span class="range"><input name="minCostUsd" class="w-s" placeholder="min" aria-label="Min cost USD"><input name="maxCostUsd" class="w-s" placeholder="max" aria-label="Max cost USD"></span></label>
  <label>Tokens<span class="range"><input name="minTokens" class="w-s" placeholder="min" aria-label="Min tokens"><input name="maxTokens" class="w-s" placeholder="max" aria-label="Max tokens"></span></label>
  <button type="submit" class="primary">Apply</button><button type="button" id="clear">Clear</button>
</form>
<div id="error" role="alert"></div>
<form id="login"><strong>Logs token</strong><div class="sub">Kept in this tab only.</div><label for="token" class="sub">Token</label><input id="token" type="password" autocomplete="off"><button class="primary">Open logs</button></form>
<main>
  <table id="requests">
    <thead><tr><th id="time-col">Time</th><th>Trace id</th><th>Model</th><th>Served by</th><th>Status</th><th class="num">Tokens</th><th class="num">Cost</th><th class="num">Latency</th></tr></thead>
    <tbody id="rows"></tbody>
  </table>
  <button type="button" id="more">Load more</button>
  <span id="row-hint" hidden>Press Enter to open its details</span>
</main>
<aside id="detail" aria-label="Request"><button type="button" id="close" aria-label="Close details">Close ✕</button><div id="detail-body"></div></aside>
`;

/** The page, with the response's CSP nonce on its only script and style. */
export function viewerPage(nonce: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="no-referrer"><link rel="icon" href="data:,"><title>Switchyard · request logs</title>
<style nonce="${nonce}">${STYLE}</style></head>
<body>${BODY}<script nonce="${nonce}">${SCRIPT}</script></body></html>`;
}
