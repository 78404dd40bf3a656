/*
 * app.js - the archived compliance console.  Plain JavaScript, no build
 * step, no inline script (the CSP forbids it).  Every value from the API
 * is put into the page with textContent, never as HTML, so subjects,
 * addresses, bodies and file names carrying markup stay text.  The HTML
 * part of a message is shown only in a sandboxed iframe (no scripts, a
 * policy that blocks remote content).  Characters that are invisible or
 * turn the direction of the text around them (Unicode format characters:
 * bidi overrides and isolates, zero-width spaces and joiners ...) are
 * shown as visible marks, ⟨U+202E⟩, so that "invoice<U+202E>fdp.exe"
 * cannot pass for "invoiceexe.pdf" (fill() and el() below).
 */
'use strict';

const $ = (id) => document.getElementById(id);
let session = null;                  /* GET /api/v1/session */
const search = { q: '', cursors: [null], page: 0 };
let auditBefore = null;

/* Format characters (Cf), line and paragraph separators: every one of
 * them in names, addresses, subjects and headers; in a body's text only
 * the ones that change direction (other format characters belong to
 * scripts such as Persian there). */
const HIDDEN = /[\p{Cf}\u2028\u2029]/u;
const HIDDEN_ALL = /([\p{Cf}\u2028\u2029])/u;
const BIDI_ONLY = /([\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069])/u;

/* Put text into node e as text nodes, each hidden character as a
 * visible mark <span class="cf">⟨U+XXXX⟩</span>. */
function fill(e, text, bidiOnly) {
	e.textContent = '';
	const s = text === undefined || text === null ? '' : String(text);
	if (!HIDDEN.test(s)) { e.textContent = s; return e; }
	const parts = s.split(bidiOnly ? BIDI_ONLY : HIDDEN_ALL);
	for (let i = 0; i < parts.length; i++) {
		if (i % 2 === 0) {
			if (parts[i]) e.appendChild(document.createTextNode(parts[i]));
			continue;
		}
		const cp = parts[i].codePointAt(0).toString(16).toUpperCase().padStart(4, '0');
		const m = document.createElement('span');
		m.className = 'cf';
		m.title = 'invisible or direction-changing character U+' + cp;
		m.textContent = '⟨U+' + cp + '⟩';
		e.appendChild(m);
	}
	return e;
}

function el(tag, text, cls) {
	const e = document.createElement(tag);
	if (text !== undefined && text !== null) fill(e, text);
	if (cls) e.className = cls;
	return e;
}

function flash(text) {
	const f = $('flash');
	f.textContent = text;
	f.hidden = false;
	setTimeout(() => { f.hidden = true; }, 6000);
}

/* fetch JSON; throws {status, error} on failure */
async function api(method, path, body) {
	const opt = { method, headers: {}, credentials: 'same-origin' };
	if (body !== undefined) {
		opt.headers['Content-Type'] = 'application/json';
		opt.body = JSON.stringify(body);
	}
	if (method !== 'GET' && session) opt.headers['X-CSRF-Token'] = session.csrf_token;
	const r = await fetch(path, opt);
	let j = null;
	try { j = await r.json(); } catch (e) { j = null; }
	if (!r.ok) {
		if (r.status === 401 && path !== '/api/v1/session') {
			session = null;
			location.hash = '#/login';
		}
		throw { status: r.status, error: (j && j.error) || { code: 'http', message: 'HTTP ' + r.status } };
	}
	return j;
}

function has(role) { return session && session.roles.indexOf(role) >= 0; }

function show(view) {
	for (const v of document.querySelectorAll('.view')) v.hidden = v.id !== 'view-' + view;
	$('top').hidden = !session;
	for (const a of document.querySelectorAll('header nav a'))
		a.classList.toggle('active', a.id === 'nav-' + view);
}

function setupNav() {
	$('who').textContent = session.operator ? session.user + ' (operator)'
		: session.user + ' @ ' + session.tenant + ' — ' + session.roles.join(', ');
	$('nav-search').hidden = !(has('officer') || has('legal'));
	$('nav-audit').hidden = !(has('auditor') || has('admin'));
	$('nav-holds').hidden = !(has('legal') || has('officer') || has('admin'));   /* jobs.js */
	$('nav-exports').hidden = !has('officer');
	$('nav-users').hidden = !has('admin');
	$('nav-tenants').hidden = !has('operator');
	$('nav-quarantine').hidden = !(has('officer') || has('recipient'));   /* quarantine.js */
	$('nav-gateway').hidden = !(has('officer') || has('admin'));
	$('nav-relay').hidden = !(has('officer') || has('admin'));   /* relay.js */
}

function home() {
	if (has('officer') || has('legal')) return '#/search';
	if (has('auditor') || has('admin')) return '#/audit';
	if (has('operator')) return '#/tenants';
	if (has('recipient')) return '#/quarantine';
	return '#/login';
}

/* --- sign-in --------------------------------------------------------- */

async function onLogin(ev) {
	ev.preventDefault();
	$('login-error').textContent = '';
	const body = { tenant: $('login-tenant').value.trim(), user: $('login-user').value.trim(),
		password: $('login-password').value };
	if (!$('login-totp-row').hidden) body.totp = $('login-totp').value.trim();
	try {
		session = await api('POST', '/api/v1/session', body);
		$('login-password').value = '';
		$('login-totp').value = '';
		setupNav();
		location.hash = home();
	} catch (e) {
		/* never leave a rejected password in the form */
		if (e.error.code !== 'totp_required') $('login-password').value = '';
		$('login-totp').value = '';
		if (e.error.code === 'totp_required') {
			$('login-totp-row').hidden = false;
			$('login-totp').focus();
		}
		$('login-error').textContent = e.error.message;
	}
}

async function onSignout() {
	try { await api('DELETE', '/api/v1/session'); } catch (e) { /* gone */ }
	session = null;
	location.hash = '#/login';
}

/* --- search ---------------------------------------------------------- */

function showQueryError(q, err) {
	$('query-error').hidden = false;
	const col = err.column || 0;
	if (col) {
		const input = $('q');
		const pos = err.byte !== undefined ? err.byte : col - 1;
		input.focus();
		input.setSelectionRange(pos, pos + 1);
	}
	$('query-error-text').textContent = q;
	$('query-error-caret').textContent = (col ? ' '.repeat(col - 1) + '^ ' : '') + err.message;
}

function snippet(parts) {
	const s = el('div', null, 'snippet');
	for (const p of parts || []) s.appendChild(p.match ? el('mark', p.text) : document.createTextNode(p.text));
	return s;
}

async function runSearch() {
	const q = search.q;
	$('q').value = q;
	$('query-error').hidden = true;
	$('results').hidden = true;
	$('results-body').textContent = '';
	$('search-summary').textContent = q ? 'Searching…' : 'Type a query; see Query help for the language.';
	$('prev-page').hidden = $('next-page').hidden = true;
	$('export-results').hidden = true;
	$('page-info').textContent = '';
	if (!q) return;
	const cur = search.cursors[search.page];
	let path = '/api/v1/search?limit=25&q=' + encodeURIComponent(q);
	if (cur) path += '&cursor=' + encodeURIComponent(cur);
	let r;
	try {
		r = await api('GET', path);
	} catch (e) {
		$('search-summary').textContent = '';
		if (e.error.code === 'query_syntax') showQueryError(q, e.error);
		else flash(e.error.message);
		return;
	}
	const tb = $('results-body');
	tb.textContent = '';
	for (const row of r.rows) {
		const tr = el('tr', null, 'row');
		tr.dataset.id = row.id;
		tr.appendChild(el('td', row.date.replace('T', ' ').replace('Z', ''), 'c-date'));
		tr.appendChild(el('td', row.from, 'c-from'));
		tr.appendChild(el('td', row.to.split('\n').join(', '), 'c-to'));
		const td = el('td');
		const a = el('a', row.subject || '(no subject)', 'subject');
		a.href = '#/message/' + row.id;
		td.appendChild(a);
		td.appendChild(snippet(row.snippet));
		tr.appendChild(td);
		const fl = el('td', null, 'c-flags');
		for (const f of row.flags) fl.appendChild(el('span', f === 'attachment' ? 'att.' : f, 'flag'));
		tr.appendChild(fl);
		tr.addEventListener('click', (ev) => { if (ev.target.tagName !== 'A') location.hash = '#/message/' + row.id; });
		tb.appendChild(tr);
	}
	$('results').hidden = r.rows.length === 0;
	$('export-results').hidden = !(has('officer') && r.total > 0);   /* jobs.js */
	const first = search.page * 25 + 1;
	$('search-summary').textContent = r.total === 0 ? 'No messages match.'
		: r.total + (r.total === 1 ? ' message' : ' messages') + ' match.';
	if (r.rows.length) $('page-info').textContent = 'Showing ' + first + '–' + (first + r.rows.length - 1) + ' of ' + r.total;
	search.cursors[search.page + 1] = r.next_cursor;
	$('next-page').hidden = !r.next_cursor;
	$('prev-page').hidden = search.page === 0;
}

function onSearch(ev) {
	ev.preventDefault();
	const q = $('q').value.trim();
	const h = '#/search?q=' + encodeURIComponent(q);
	if (location.hash === h) { search.q = q; search.cursors = [null]; search.page = 0; runSearch(); }
	else location.hash = h;
}

/* --- one message ----------------------------------------------------- */

function field(dl, name, value) {
	if (value === null || value === undefined || value === '' ||
	    (Array.isArray(value) && value.length === 0)) return;
	dl.appendChild(el('dt', name));
	dl.appendChild(el('dd', Array.isArray(value) ? value.join(', ') : value));
}

function envelopeLines(env) {
	const out = [];
	if (!env || !Array.isArray(env.recipients)) return out;
	for (const r of env.recipients) {
		let s = r.address + (r.type ? ' (' + r.type + ')' : '');
		if (r.expanded_from) s += ' expanded from ' + r.expanded_from;
		if (r.forwarded_from) s += ' forwarded from ' + r.forwarded_from;
		out.push(s);
	}
	return out;
}

async function showMessage(id) {
	let m;
	try {
		m = await api('GET', '/api/v1/messages/' + encodeURIComponent(id));
	} catch (e) {
		flash(e.error.message);
		location.hash = '#/search';
		return;
	}
	fill($('msg-subject'), m.subject || '(no subject)');
	const dl = $('msg-envelope');
	dl.textContent = '';
	field(dl, 'From', m.from);
	field(dl, 'To', m.to);
	field(dl, 'Cc', m.cc);
	field(dl, 'Date', m.date ? new Date(m.date * 1000).toISOString().replace('T', ' ').replace('.000Z', ' UTC') : null);
	field(dl, 'Message-ID', m.message_id);
	if (m.envelope) {
		field(dl, 'Envelope sender', m.envelope.sender);
		const lines = envelopeLines(m.envelope);
		if (lines.length) field(dl, 'Recipients', lines.join('\n'));
	}
	field(dl, 'Received', m.received.replace('T', ' ').replace('Z', ' UTC'));
	field(dl, 'Retain until', m.retain_until.replace('T', ' ').replace('Z', ' UTC'));
	field(dl, 'Size', m.size + ' bytes');
	field(dl, 'SHA-256', m.sha256);
	$('msg-download').href = m.original_url;
	$('msg-download').setAttribute('download', m.id + '.eml');
	const ul = $('msg-attachments');
	ul.textContent = '';
	for (const a of m.attachments) {
		const li = el('li');
		const link = el('a', a.name);
		link.href = a.url;
		link.setAttribute('download', '');
		li.appendChild(link);
		li.appendChild(document.createTextNode(' — ' + a.content_type + ', ' + a.size + ' bytes'));
		ul.appendChild(li);
	}
	if (!m.attachments.length) ul.appendChild(el('li', 'none'));
	fill($('msg-text'), m.text, true);
	$('msg-html-box').hidden = !m.html_url;
	$('msg-html').src = m.html_url || 'about:blank';
	const ht = $('msg-headers');
	ht.textContent = '';
	for (const h of m.headers) {
		const tr = el('tr');
		tr.appendChild(el('td', h.name));
		tr.appendChild(el('td', h.value));
		ht.appendChild(tr);
	}
	fill($('msg-holds'), m.holds && m.holds.length ? 'Under legal hold: ' + m.holds.join(', ') : 'Under no legal hold.');
	fill($('msg-meta'), JSON.stringify({ envelope: m.envelope, metadata: m.metadata, arrivals: m.arrivals }, null, 2));
	$('back-to-results').href = '#/search?q=' + encodeURIComponent(search.q);
}

/* --- audit log ------------------------------------------------------- */

function auditQuery() {
	const p = new URLSearchParams();
	if ($('audit-user').value.trim()) p.set('user', $('audit-user').value.trim());
	if ($('audit-action').value) p.set('action', $('audit-action').value);
	if ($('audit-from').value) p.set('from', $('audit-from').value);
	if ($('audit-to').value) p.set('to', $('audit-to').value);
	return p;
}

/* An entry's detail as "name: value" lines (the method and status are
 * shown under the action; "by" is the channel, web or archivectl). */
function auditDetail(detail) {
	const td = el('td', null, 'c-detail');
	for (const [k, v] of Object.entries(detail || {})) {
		if (k === 'by' || k === 'method' || k === 'status') continue;
		let val;
		if (v === null) val = '—';
		else if (Array.isArray(v)) val = v.map((x) => typeof x === 'object' ? JSON.stringify(x) : String(x)).join(', ');
		else if (typeof v === 'object') val = Object.entries(v).map(([a, b]) => a + ' ' + (typeof b === 'object' ? JSON.stringify(b) : b)).join(', ');
		else val = String(v);
		const line = el('div', null, 'kv');
		line.appendChild(el('span', k.replace(/_/g, ' ') + ': ', 'k'));
		line.appendChild(el('span', val));
		td.appendChild(line);
	}
	return td;
}

async function loadAudit(more) {
	const p = auditQuery();
	const csv = new URLSearchParams(p);
	csv.set('format', 'csv');
	csv.set('limit', '10000');
	$('audit-csv').href = '/api/v1/audit?' + csv.toString();
	p.set('limit', '100');
	if (more && auditBefore) p.set('before', auditBefore);
	let r;
	try {
		r = await api('GET', '/api/v1/audit?' + p.toString());
	} catch (e) {
		flash(e.error.message);
		return;
	}
	const tb = $('audit-body');
	if (!more) tb.textContent = '';
	for (const e of r.entries) {
		const tr = el('tr');
		tr.appendChild(el('td', e.seq, 'c-seq'));
		tr.appendChild(el('td', e.time.replace('T', ' ').replace('Z', ''), 'c-time'));
		tr.appendChild(el('td', e.user || ''));
		tr.appendChild(el('td', e.client || ''));
		const act = el('td', null, 'c-action');
		act.appendChild(el('div', e.action));
		const how = [e.detail.method, e.detail.status].filter((x) => x !== undefined && x !== null);
		if (how.length) act.appendChild(el('div', how.join(' '), e.detail.status >= 400 ? 'outcome refused' : 'outcome'));
		tr.appendChild(act);
		const o = el('td', null, 'c-object');
		if (e.object) {
			if (has('officer') || has('legal')) {
				const a = el('a', e.object.slice(0, 12) + '…');
				a.href = '#/message/' + e.object;
				o.appendChild(a);
			} else {
				o.textContent = e.object.slice(0, 12) + '…';
			}
		}
		tr.appendChild(o);
		tr.appendChild(auditDetail(e.detail));
		tb.appendChild(tr);
	}
	auditBefore = r.next_before;
	$('audit-more').hidden = !r.next_before;
}

/* --- users and tenants ------------------------------------------------ */

async function userChange(name, change) {
	try {
		const u = await api('PATCH', '/api/v1/users/' + encodeURIComponent(name), change);
		if (u.totp_uri) {
			$('users-note').hidden = false;
			$('users-note').textContent = 'Give this to ' + name + ' for an authenticator app (shown once): ' + u.totp_uri;
		}
		loadUsers();
	} catch (e) { flash(e.error.message); }
}

function button(text, fn) {
	const b = el('button', text, 'secondary');
	b.type = 'button';
	b.addEventListener('click', fn);
	return b;
}

async function loadUsers() {
	let r;
	try { r = await api('GET', '/api/v1/users'); } catch (e) { flash(e.error.message); return; }
	const tb = $('users-body');
	tb.textContent = '';
	for (const u of r.users) {
		const tr = el('tr');
		tr.appendChild(el('td', u.name));
		tr.appendChild(el('td', u.roles.join(', ')));
		const st = [];
		if (u.disabled) st.push('disabled');
		if (u.locked) st.push('locked');
		if (u.totp) st.push('TOTP');
		tr.appendChild(el('td', st.join(', ') || 'active'));
		tr.appendChild(el('td', u.created.replace('T', ' ').replace('Z', '')));
		const td = el('td');
		td.appendChild(button(u.disabled ? 'Enable' : 'Disable', () => userChange(u.name, { disabled: !u.disabled })));
		if (u.locked) td.appendChild(button('Unlock', () => userChange(u.name, { unlock: true })));
		td.appendChild(button(u.totp ? 'Remove TOTP' : 'Require TOTP', () => userChange(u.name, { totp: u.totp ? 'disable' : 'enable' })));
		tr.appendChild(td);
		tb.appendChild(tr);
	}
}

async function onUserAdd(ev) {
	ev.preventDefault();
	$('user-error').textContent = '';
	const roles = [];
	for (const c of document.querySelectorAll('#user-form input[type=checkbox]')) if (c.checked) roles.push(c.value);
	try {
		const body = { name: $('new-name').value.trim(), roles, password: $('new-password').value };
		if ($('new-addresses').value.trim()) body.addresses = $('new-addresses').value.trim();
		await api('POST', '/api/v1/users', body);
		$('new-password').value = '';
		$('new-addresses').value = '';
		$('new-name').value = '';
		loadUsers();
	} catch (e) { $('user-error').textContent = e.error.message; }
}

async function loadTenants() {
	let r;
	try { r = await api('GET', '/api/v1/tenants'); } catch (e) { flash(e.error.message); return; }
	const tb = $('tenants-body');
	tb.textContent = '';
	for (const t of r.tenants) {
		const tr = el('tr');
		tr.appendChild(el('td', t.name));
		tr.appendChild(el('td', t.state));
		tr.appendChild(el('td', t.key_version));
		tr.appendChild(el('td', t.retention_days));
		tr.appendChild(el('td', t.journal.join(', ')));
		const td = el('td');
		td.appendChild(button('Rotate key', async () => {
			try { await api('POST', '/api/v1/tenants/' + encodeURIComponent(t.name) + '/rotate-key', {}); loadTenants(); }
			catch (e) { flash(e.error.message); }
		}));
		tr.appendChild(td);
		tb.appendChild(tr);
	}
}

async function onTenantAdd(ev) {
	ev.preventDefault();
	$('tenant-error').textContent = '';
	try {
		await api('POST', '/api/v1/tenants', { name: $('tenant-name').value.trim(),
			journal: [$('tenant-journal').value.trim()], retention_days: Number($('tenant-days').value) });
		loadTenants();
	} catch (e) { $('tenant-error').textContent = e.error.message; }
}

async function onTenantAdmin(ev) {
	ev.preventDefault();
	$('tadmin-error').textContent = '';
	const t = $('tadmin-tenant').value.trim();
	try {
		await api('POST', '/api/v1/tenants/' + encodeURIComponent(t) + '/users',
			{ name: $('tadmin-name').value.trim(), roles: ['admin'], password: $('tadmin-password').value });
		$('tadmin-password').value = '';
		flash('administrator ' + $('tadmin-name').value.trim() + ' added to ' + t);
	} catch (e) { $('tadmin-error').textContent = e.error.message; }
}

/* --- routing ---------------------------------------------------------- */

/* Which pages a role may open; a link to another (a shared search link
 * followed by an auditor, say) lands on the user's own first page. */
function allowed(h) {
	const mail = has('officer') || has('legal');
	if (h.startsWith('#/search') || h.startsWith('#/message/')) return mail;
	if (h.startsWith('#/holds')) return mail || has('admin');
	if (h.startsWith('#/exports')) return has('officer');
	if (h.startsWith('#/audit')) return has('auditor') || has('admin');
	if (h.startsWith('#/users')) return has('admin');
	if (h.startsWith('#/tenants')) return has('operator');
	if (h.startsWith('#/relay')) return has('officer') || has('admin');   /* relay.js */
	return true;
}

async function route() {
	const h = location.hash || '#/';
	if (!session) {
		try { session = await api('GET', '/api/v1/session'); setupNav(); } catch (e) { session = null; }
	}
	if (!session) { show('login'); $('login-user').focus(); return; }
	if (!allowed(h)) {
		const page = h.replace(/^#\/([a-z]+).*$/, '$1');
		flash('Your role does not include the ' + page + ' page: here is yours.');
		location.replace(home());
		return;
	}
	if (h.startsWith('#/search')) {
		const q = new URLSearchParams(h.split('?')[1] || '').get('q') || '';
		show('search');
		if (q !== search.q || search.cursors.length === 1) { search.q = q; search.cursors = [null]; search.page = 0; }
		runSearch();
	} else if (h.startsWith('#/message/')) {
		show('message');
		showMessage(h.slice(10));
	} else if (h.startsWith('#/holds')) {   /* jobs.js */
		show('holds');
		loadHolds();
	} else if (h.startsWith('#/exports')) {
		show('exports');
		loadExports();
	} else if (h.startsWith('#/quarantine/')) {   /* quarantine.js */
		show('qmessage');
		showQuarantined(h.slice(13));
	} else if (h.startsWith('#/quarantine')) {
		show('quarantine');
		loadQuarantine();
	} else if (h.startsWith('#/gateway')) {
		show('gateway');
		loadGateway();
	} else if (h.startsWith('#/relay')) {   /* relay.js */
		show('relay');
		loadRelay();
	} else if (h.startsWith('#/audit')) {
		show('audit');
		loadAudit(false);
	} else if (h.startsWith('#/users')) {
		show('users');
		loadUsers();
	} else if (h.startsWith('#/tenants')) {
		show('tenants');
		loadTenants();
	} else {
		location.hash = home();
	}
}

document.addEventListener('DOMContentLoaded', () => {
	$('login-form').addEventListener('submit', onLogin);
	$('signout').addEventListener('click', onSignout);
	$('search-form').addEventListener('submit', onSearch);
	$('help-toggle').addEventListener('click', () => { $('help').hidden = !$('help').hidden; });
	for (const a of document.querySelectorAll('a.example'))
		a.addEventListener('click', (ev) => { ev.preventDefault(); $('q').value = a.textContent; $('search-form').requestSubmit(); });
	$('next-page').addEventListener('click', () => { search.page++; runSearch(); });
	$('prev-page').addEventListener('click', () => { if (search.page > 0) search.page--; runSearch(); });
	$('audit-form').addEventListener('submit', (ev) => { ev.preventDefault(); loadAudit(false); });
	$('audit-more').addEventListener('click', () => loadAudit(true));
	$('user-form').addEventListener('submit', onUserAdd);
	$('tenant-form').addEventListener('submit', onTenantAdd);
	$('tadmin-form').addEventListener('submit', onTenantAdmin);
	window.addEventListener('hashchange', route);
	route();
});
