/*
 * jobs.js - the console's legal holds and exports pages (loaded after
 * app.js, whose helpers it uses: $, el, api, flash, has, button, search).
 * Plain JavaScript, no inline script; API values go in with textContent.
 */
'use strict';

let exportPoll = null;

function utc(t) { return t ? t.replace('T', ' ').replace('Z', '') : ''; }

function holdScope(h) {
	const s = [];
	if (h.custodians.length) s.push('custodians: ' + h.custodians.join(', '));
	if (h.from || h.until) s.push('dated ' + (h.from ? h.from.slice(0, 10) : '…') + ' to ' + (h.until ? h.until.slice(0, 10) : '…'));
	if (h.query) s.push('query: ' + h.query);
	return s.join('; ');
}

async function loadHolds() {
	let r;
	$('hold-form').hidden = !has('legal');
	$('release-form').hidden = true;
	try { r = await api('GET', '/api/v1/holds'); } catch (e) { flash(e.error.message); return; }
	const tb = $('holds-body');
	tb.textContent = '';
	for (const h of r.holds) {
		const tr = el('tr');
		const name = el('td');
		name.appendChild(el('div', h.name, 'subject'));
		if (h.description) name.appendChild(el('div', h.description, 'snippet'));
		tr.appendChild(name);
		tr.appendChild(el('td', h.state));
		tr.appendChild(el('td', holdScope(h)));
		tr.appendChild(el('td', h.messages === null ? '?' : h.messages));
		tr.appendChild(el('td', utc(h.created) + ' by ' + h.created_by));
		tr.appendChild(el('td', h.released ? utc(h.released) + ' by ' + h.released_by + ': ' + h.release_reason : ''));
		const td = el('td');
		if (h.state === 'active' && has('legal')) {
			td.appendChild(button('Release…', () => {
				$('release-form').hidden = false;
				$('release-name').textContent = h.name;
				$('release-form').dataset.name = h.name;
				$('release-error').textContent = '';
				$('release-reason').focus();
			}));
		}
		if (h.state === 'active' && has('officer'))
			td.appendChild(button('Export', () => startExport({ scope: 'hold', hold: h.name })));
		tr.appendChild(td);
		tb.appendChild(tr);
	}
	if (!r.holds.length) {
		const tr = el('tr');
		const td = el('td', 'No holds.');
		td.colSpan = 7;
		tr.appendChild(td);
		tb.appendChild(tr);
	}
}

async function onHoldCreate(ev) {
	ev.preventDefault();
	$('hold-error').textContent = '';
	const body = { name: $('hold-name').value.trim(), description: $('hold-description').value };
	const cu = $('hold-custodians').value.split(',').map((s) => s.trim()).filter((s) => s);
	if (cu.length) body.custodians = cu;
	if ($('hold-from').value) body.from = $('hold-from').value;
	if ($('hold-until').value) body.until = $('hold-until').value;
	if ($('hold-query').value.trim()) body.query = $('hold-query').value.trim();
	try {
		await api('POST', '/api/v1/holds', body);
		for (const id of ['hold-name', 'hold-description', 'hold-custodians', 'hold-from', 'hold-until', 'hold-query']) $(id).value = '';
		loadHolds();
	} catch (e) {
		let m = e.error.message;
		if (e.error.code === 'query_syntax' && e.error.column) m += ' — at column ' + e.error.column + ' of the query';
		$('hold-error').textContent = m;
	}
}

async function onHoldRelease(ev) {
	ev.preventDefault();
	$('release-error').textContent = '';
	const name = $('release-form').dataset.name;
	try {
		await api('POST', '/api/v1/holds/' + encodeURIComponent(name) + '/release', { reason: $('release-reason').value });
		$('release-reason').value = '';
		loadHolds();
	} catch (e) { $('release-error').textContent = e.error.message; }
}

/* --- exports --------------------------------------------------------- */

function exportScope(x) {
	if (x.scope === 'query') return 'query: ' + x.query;
	if (x.scope === 'hold') return 'hold: ' + x.hold;
	return 'whole tenant';
}

async function loadExports() {
	let r;
	if (exportPoll) { clearTimeout(exportPoll); exportPoll = null; }
	try { r = await api('GET', '/api/v1/exports'); } catch (e) { flash(e.error.message); return; }
	const tb = $('exports-body');
	tb.textContent = '';
	let busy = false;
	for (const x of r.exports) {
		const tr = el('tr');
		tr.appendChild(el('td', utc(x.created)));
		tr.appendChild(el('td', x.created_by));
		tr.appendChild(el('td', exportScope(x)));
		tr.appendChild(el('td', x.state === 'failed' ? 'failed: ' + x.error : x.state));
		const p = el('td');
		const bar = el('progress');
		bar.max = x.progress.total || 1;
		bar.value = x.state === 'done' ? bar.max : x.progress.done;
		p.appendChild(bar);
		p.appendChild(document.createTextNode(' ' + x.progress.done + ' / ' + x.progress.total));
		tr.appendChild(p);
		tr.appendChild(el('td', x.size !== undefined ? x.size + ' bytes' : ''));
		tr.appendChild(el('td', x.manifest_sha256 || '', 'snippet'));
		const td = el('td');
		if (x.state === 'done') {
			const a = el('a', 'Download', 'button');
			a.href = x.download_url;
			a.setAttribute('download', 'export-' + x.id + '.zip');
			td.appendChild(a);
		}
		if (x.state !== 'running') td.appendChild(button('Delete', async () => {
			const what = exportScope(x) + ', started ' + utc(x.created) + ' by ' + x.created_by;
			if (!window.confirm('Delete this export (' + what + ')?\n\nIts ZIP file is removed from the server; this cannot be undone.')) return;
			try { await api('DELETE', '/api/v1/exports/' + x.id); } catch (e) { flash(e.error.message); }
			loadExports();
		}));
		tr.appendChild(td);
		tb.appendChild(tr);
		if (x.state === 'queued' || x.state === 'running') busy = true;
	}
	if (busy && location.hash.startsWith('#/exports')) exportPoll = setTimeout(loadExports, 1500);
}

async function startExport(body) {
	try {
		await api('POST', '/api/v1/exports', body);
		if (location.hash.startsWith('#/exports')) loadExports();
		else location.hash = '#/exports';
		return null;
	} catch (e) {
		let m = e.error.message;
		if (e.error.code === 'query_syntax' && e.error.column) m += ' — at column ' + e.error.column + ' of the query';
		return m;
	}
}

async function onExportStart(ev) {
	ev.preventDefault();
	$('export-error').textContent = '';
	const scope = $('export-scope').value;
	const body = { scope, mbox: $('export-mbox').checked, dat: $('export-dat').checked };
	if (scope === 'query') body.query = $('export-what').value.trim();
	if (scope === 'hold') body.hold = $('export-what').value.trim();
	const err = await startExport(body);
	if (err) $('export-error').textContent = err;
}

document.addEventListener('DOMContentLoaded', () => {
	$('hold-form').addEventListener('submit', onHoldCreate);
	$('release-form').addEventListener('submit', onHoldRelease);
	$('release-cancel').addEventListener('click', () => { $('release-form').hidden = true; });
	$('export-form').addEventListener('submit', onExportStart);
	$('export-results').addEventListener('click', async () => {
		const err = await startExport({ scope: 'query', query: search.q });
		if (err) flash(err);
	});
});
