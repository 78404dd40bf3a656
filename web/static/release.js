/*
 * release.js - the page a quarantine digest's release link opens.  The
 * link's fields are in the fragment (#t=..&q=..&r=..&e=..&s=..), so they
 * reach neither server logs nor referrers; this page posts them to the
 * digest-link API: first to show what the message is, then, when the
 * recipient confirms, to release it (once).  No session, no password.
 */
'use strict';

const $ = (id) => document.getElementById(id);
const link = {};

async function post(what) {
	const r = await fetch('/api/v1/digest-link/' + what, {
		method: 'POST', headers: { 'Content-Type': 'application/json' },
		body: JSON.stringify(link), credentials: 'omit' });
	let j = null;
	try { j = await r.json(); } catch (e) { j = null; }
	if (!r.ok) throw (j && j.error) || { message: 'HTTP ' + r.status };
	return j;
}

function show(m) {
	const dl = $('rl-fields');
	dl.textContent = '';
	const add = (k, v) => { if (!v) return; const dt = document.createElement('dt'); dt.textContent = k; const dd = document.createElement('dd'); dd.textContent = v; dl.appendChild(dt); dl.appendChild(dd); };
	add('From', m.mail_from || '<>');
	add('Subject', m.subject || '(no subject)');
	add('Received', (m.received || '').replace('T', ' ').replace('Z', ' UTC'));
	add('Held as', m.verdict);
	add('For', m.recipient);
	add('Link valid until', (m.link_expires || '').replace('T', ' ').replace('Z', ' UTC'));
	dl.hidden = false;
}

async function release() {
	$('rl-release').disabled = true;
	$('rl-error').textContent = '';
	try {
		const m = await post('release');
		show(m);
		$('rl-release').hidden = true;
		$('rl-status').textContent = 'Released: the message is on its way to you.';
	} catch (e) {
		$('rl-error').textContent = e.message;
		$('rl-release').disabled = false;
	}
}

document.addEventListener('DOMContentLoaded', async () => {
	const p = new URLSearchParams(location.hash.slice(1));
	for (const k of ['t', 'q', 'r', 'e', 's']) link[k] = p.get(k) || '';
	$('rl-release').addEventListener('click', release);
	try {
		const m = await post('info');
		show(m);
		$('rl-status').textContent = 'This message was held for you. Release it?';
		$('rl-release').hidden = false;
	} catch (e) {
		$('rl-status').textContent = '';
		$('rl-error').textContent = e.message;
	}
});
