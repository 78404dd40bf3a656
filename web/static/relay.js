/*
 * relay.js - the console's Delivery page (loaded after app.js, whose
 * helpers it uses: $, el, api, flash, has, button): the gateway's relay
 * queue for the tenant's domains (what waits, the oldest, the next
 * attempt, the last error), its counts per day (a chart drawn by the
 * server, and a table), and for an admin: retry now, hold and release of
 * a domain, each after a confirmation.  Plain JavaScript, no inline
 * script; API values go in with textContent.
 */
'use strict';

let rlPending = null;         /* {what, domain}: waiting for its confirmation */

function rlUtc(t) { return t ? t.replace('T', ' ').replace('Z', '') : ''; }

async function loadRelayQueue() {
	let r;
	try { r = await api('GET', '/api/v1/relay/queue'); } catch (e) { flash(e.error.message); return; }
	const tb = $('rl-queue-body');
	tb.textContent = '';
	let waiting = 0;
	for (const d of r.domains) {
		waiting += d.pending + d.deferred;
		const tr = el('tr', null, 'row');
		tr.dataset.domain = d.domain;
		tr.appendChild(el('td', d.domain + (d.configured ? '' : ' (outside)'), 'c-domain'));
		tr.appendChild(el('td', d.pending + d.deferred, 'c-waiting'));
		tr.appendChild(el('td', d.deferred, 'c-deferred'));
		tr.appendChild(el('td', d.delivered, 'c-delivered'));
		tr.appendChild(el('td', d.bounced, 'c-bounced'));
		tr.appendChild(el('td', rlUtc(d.oldest), 'c-date'));
		tr.appendChild(el('td', rlUtc(d.next_attempt), 'c-date'));
		tr.appendChild(el('td', d.last_error || '', 'c-error'));
		tr.appendChild(el('td', d.held ? 'held' : 'delivering', 'state'));
		const td = el('td');
		if (has('admin') && d.configured)
			td.appendChild(button(d.held ? 'Release' : 'Hold', () => rlAsk(d.held ? 'release' : 'hold', d.domain)));
		tr.appendChild(td);
		tb.appendChild(tr);
	}
	$('rl-queue').hidden = r.domains.length === 0;
	$('rl-retry').hidden = !has('admin') || !r.gateway;
	$('rl-queue-summary').textContent = !r.gateway ? 'The gateway is not running on this server: nothing is queued here.'
		: r.messages + (r.messages === 1 ? ' message' : ' messages') + ' in the delivery queue, ' +
		  waiting + (waiting === 1 ? ' recipient' : ' recipients') + ' waiting.' +
		  (r.unreadable ? ' (' + r.unreadable + ' could not be read now.)' : '');
}

async function loadRelayStats() {
	const days = $('rl-days').value;
	let r;
	$('rl-chart').src = '/api/v1/relay/chart.svg?days=' + encodeURIComponent(days) + '&t=' + Date.now();
	try { r = await api('GET', '/api/v1/relay/stats?days=' + encodeURIComponent(days)); } catch (e) { flash(e.error.message); return; }
	const tb = $('rl-body');
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
	$('rl-summary').textContent = 'Last ' + days + ' days: ' + t.queued + ' recipients queued — ' + t.delivered +
		' delivered, ' + t.deferred + ' attempts deferred, ' + t.bounced + ' bounced; ' + t.dsn + ' bounce notices (DSNs) sent.';
}

function loadRelay() {
	$('rl-confirm').hidden = true;
	loadRelayQueue();
	loadRelayStats();
}

function rlAsk(what, domain) {
	rlPending = { what, domain };
	$('rl-confirm-text').textContent =
		what === 'hold' ? 'Hold the delivery to ' + domain + '? Its mail waits in the queue (up to the queue lifetime) until it is released.'
		: what === 'release' ? 'Release ' + domain + '? Its waiting mail is delivered at once.'
		: 'Try every waiting message now?';
	$('rl-error').textContent = '';
	$('rl-confirm').hidden = false;
	$('rl-confirm-yes').focus();
}

async function rlConfirm(ev) {
	ev.preventDefault();
	if (!rlPending) return;
	const p = rlPending;
	const path = p.what === 'retry' ? '/api/v1/relay/retry'
		: '/api/v1/relay/domains/' + encodeURIComponent(p.domain) + '/' + p.what;
	try {
		await api('POST', path, {});
		rlPending = null;
		$('rl-confirm').hidden = true;
		flash(p.what === 'hold' ? p.domain + ' is held.' : p.what === 'release' ? p.domain + ' is released: delivery resumes.'
			: 'Retry asked: the gateway tries the waiting mail within seconds.');
		loadRelayQueue();
	} catch (e) { $('rl-error').textContent = e.error.message; }
}

document.addEventListener('DOMContentLoaded', () => {
	$('rl-form').addEventListener('submit', (ev) => { ev.preventDefault(); loadRelayStats(); });
	$('rl-days').addEventListener('change', loadRelayStats);
	$('rl-retry').addEventListener('click', () => rlAsk('retry', null));
	$('rl-confirm').addEventListener('submit', rlConfirm);
	$('rl-confirm-no').addEventListener('click', () => { $('rl-confirm').hidden = true; rlPending = null; });
});
