/*
 * quarantine.js - the console's quarantine and gateway pages (loaded after
 * app.js, whose helpers it uses: $, el, api, flash, has, field, button).
 * Plain JavaScript, no inline script; API values go in with textContent;
 * a quarantined message's HTML part only in a sandboxed iframe, as in the
 * message view.  Release and delete ask for a confirmation first.
 */
'use strict';

let qCurrent = null;          /* the message shown: its API record */
let qPending = null;          /* the action waiting for its confirmation */

function qUtc(t) { return t ? t.replace('T', ' ').replace('Z', '') : ''; }

function qQuery() {
	const p = new URLSearchParams();
	const add = (k, id) => { const v = $(id).value.trim(); if (v) p.set(k, v); };
	add('recipient', 'q-rcpt');
	add('sender', 'q-sender');
	add('verdict', 'q-verdict');
	add('state', 'q-state');
	add('from', 'q-from');
	add('to', 'q-to');
	return p.toString();
}

async function loadQuarantine() {
	let r;
	$('q-summary').textContent = 'Loading…';
	try { r = await api('GET', '/api/v1/quarantine?' + qQuery()); } catch (e) { $('q-summary').textContent = ''; flash(e.error.message); return; }
	const tb = $('q-body');
	tb.textContent = '';
	for (const row of r.rows) {
		const tr = el('tr', null, 'row');
		tr.dataset.id = row.id;
		tr.appendChild(el('td', qUtc(row.received), 'c-date'));
		tr.appendChild(el('td', row.mail_from || '<>', 'c-from'));
		tr.appendChild(el('td', row.rcpt_to.join(', '), 'c-to'));
		const td = el('td');
		const a = el('a', row.subject || '(no subject)', 'subject');
		a.href = '#/quarantine/' + row.id;
		td.appendChild(a);
		if (row.reasons.length) td.appendChild(el('div', row.reasons.join(', '), 'snippet'));
		tr.appendChild(td);
		tr.appendChild(el('td', row.verdict || '?', 'verdict'));
		tr.appendChild(el('td', row.state, 'state'));
		tr.addEventListener('click', (ev) => { if (ev.target.tagName !== 'A') location.hash = '#/quarantine/' + row.id; });
		tb.appendChild(tr);
	}
	$('q-table').hidden = r.rows.length === 0;
	$('q-summary').textContent = r.total === 0 ? 'Nothing in quarantine matches.'
		: r.total + (r.total === 1 ? ' message' : ' messages') + (r.rows.length < r.total ? ' (the newest ' + r.rows.length + ' shown)' : '') + '.';
}

async function showQuarantined(id) {
	let m;
	$('qm-confirm').hidden = true;
	try { m = await api('GET', '/api/v1/quarantine/' + encodeURIComponent(id)); } catch (e) { flash(e.error.message); location.hash = '#/quarantine'; return; }
	qCurrent = m;
	$('qm-subject').textContent = m.subject || '(no subject)';
	const dl = $('qm-fields');
	dl.textContent = '';
	field(dl, 'Sender', m.mail_from || '<>');
	field(dl, 'From', m.from);
	field(dl, 'Recipients', m.rcpt_to);
	field(dl, 'Verdict', (m.verdict || '?') + (m.score !== null && m.score !== undefined ? ' (score ' + m.score + ')' : ''));
	field(dl, 'Reasons', m.reasons);
	field(dl, 'State', m.state);
	field(dl, 'Received', qUtc(m.received) + ' UTC');
	field(dl, 'Kept until', qUtc(m.expires) + ' UTC');
	field(dl, 'Size', m.size + ' bytes');
	const held = m.state === 'held';
	$('qm-release').hidden = !held;
	$('qm-release-allow').hidden = !held || !m.mail_from;
	$('qm-delete').hidden = !m.can_delete || m.state === 'deleted' || m.state === 'release';
	const ul = $('qm-attachments');
	ul.textContent = '';
	for (const a of m.attachments) ul.appendChild(el('li', a.name + ' — ' + a.content_type));
	if (!m.attachments.length) ul.appendChild(el('li', 'none'));
	$('qm-text').textContent = m.text === null ? '(deleted)' : m.text;
	$('qm-html-box').hidden = !m.html_url;
	$('qm-html').src = m.html_url || 'about:blank';
	const ht = $('qm-headers');
	ht.textContent = '';
	for (const h of m.headers) {
		const tr = el('tr');
		tr.appendChild(el('td', h.name));
		tr.appendChild(el('td', h.value));
		ht.appendChild(tr);
	}
}

function qAsk(action) {
	if (!qCurrent) return;
	qPending = action;
	const who = qCurrent.rcpt_to.join(', ');
	$('qm-confirm-text').textContent =
		action === 'delete' ? 'Delete this message from the quarantine? It cannot be released afterwards.'
		: action === 'allow' ? 'Release this message to ' + who + ' and allow its sender ' + qCurrent.mail_from + ' from now on?'
		: 'Release this message to ' + who + '?';
	$('qm-error').textContent = '';
	$('qm-reason').value = '';
	$('qm-confirm').hidden = false;
	$('qm-confirm-yes').focus();
}

async function qConfirm(ev) {
	ev.preventDefault();
	if (!qCurrent || !qPending) return;
	const body = {};
	if ($('qm-reason').value.trim()) body.reason = $('qm-reason').value.trim();
	if (qPending === 'allow') body.allow_sender = true;
	const path = '/api/v1/quarantine/' + encodeURIComponent(qCurrent.id) + (qPending === 'delete' ? '/delete' : '/release');
	try {
		await api('POST', path, body);
		flash(qPending === 'delete' ? 'Deleted.' : 'Release asked: the gateway delivers it within seconds.');
		qPending = null;
		showQuarantined(qCurrent.id);
	} catch (e) { $('qm-error').textContent = e.error.message; }
}

async function loadGateway() {
	const days = $('gw-days').value;
	let r;
	/* the chart is drawn by the server (SVG), the table gives the figures */
	$('gw-chart').src = '/api/v1/gateway/chart.svg?days=' + encodeURIComponent(days) + '&t=' + Date.now();
	try { r = await api('GET', '/api/v1/gateway/stats?days=' + encodeURIComponent(days)); } catch (e) { flash(e.error.message); return; }
	const tb = $('gw-body');
	tb.textContent = '';
	for (const d of r.days.slice().reverse()) {
		const c = d.counts;
		let any = 0;
		for (const n of r.names) any += c[n];
		if (!any) continue;
		const tr = el('tr');
		tr.appendChild(el('td', d.date));
		for (const n of r.names) tr.appendChild(el('td', c[n]));
		tb.appendChild(tr);
	}
	const t = r.totals;
	$('gw-summary').textContent = 'Last ' + days + ' days: ' + (t.clean + t.spam + t.virus + t.policy + t.unscanned) +
		' messages judged — ' + t.delivered + ' delivered, ' + t.tagged + ' tagged, ' + t.quarantined +
		' quarantined, ' + t.rejected + ' rejected, ' + t.tempfailed + ' answered 451.';
}

document.addEventListener('DOMContentLoaded', () => {
	$('q-form').addEventListener('submit', (ev) => { ev.preventDefault(); loadQuarantine(); });
	$('qm-release').addEventListener('click', () => qAsk('release'));
	$('qm-release-allow').addEventListener('click', () => qAsk('allow'));
	$('qm-delete').addEventListener('click', () => qAsk('delete'));
	$('qm-confirm').addEventListener('submit', qConfirm);
	$('qm-confirm-no').addEventListener('click', () => { $('qm-confirm').hidden = true; qPending = null; });
	$('gw-days').addEventListener('change', loadGateway);
});
