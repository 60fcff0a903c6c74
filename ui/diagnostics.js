// The diagnostics panel for support staff: what the app reports (`diagnostics` command: no
// token, no password), shown as a list and a state history, and copied as JSON.

export function createDiagnostics(invoke, doc = document) {
  const $ = (id) => doc.getElementById(id);
  let last = null;

  /** Fetches the report and draws it; resolves with it (null when the app did not answer). */
  async function render() {
    const d = await invoke('diagnostics').catch(() => null);
    if (!d) return null;
    last = d;
    const c = d.counters || {};
    const items = [
      ['Till', d.till_name || '(no name set in Settings)'], ['Till id', d.till_id],
      ['App version', d.app_version], ['API', d.api_base_url], ['Socket', d.socket_url],
      ['User', d.user ? `${d.user.name || ''} (#${d.user.id})` : '—'],
      ['State', d.state.state], ['Reason', d.state.reason || '—'], ['Since', new Date(d.state.since).toLocaleString()],
      ['Reconnect attempts', c.attempts ?? 0], ['Events received', c.events_received ?? 0],
      ['Events dropped', c.events_dropped ?? 0], ['Malformed events', c.malformed ?? 0],
      ['Last event', d.last_event_at ? `${d.last_event_age_secs} s ago` : 'none yet'],
      ['Data complete', d.gap ? `no, since ${new Date(d.gap.since).toLocaleTimeString()}` : 'yes'],
      ['Updates', describeUpdate(d.update)],
    ];
    const problem = d.update && d.update.problem;
    if (problem) {
      items.push(['Last update problem', `${new Date(problem.at).toLocaleString()}: ${problem.message}`]);
    }
    const dl = $('diag-list');
    dl.textContent = '';
    for (const [k, v] of items) {
      const dt = doc.createElement('dt'); dt.textContent = k;
      const dd = doc.createElement('dd'); dd.textContent = String(v);
      dl.append(dt, dd);
    }
    const ol = $('diag-history');
    ol.textContent = '';
    for (const s of [...d.history].reverse()) {
      const li = doc.createElement('li');
      li.textContent = `${new Date(s.since).toLocaleTimeString()} ${s.state}${s.reason ? ` — ${s.reason}` : ''}`;
      ol.appendChild(li);
    }
    return d;
  }

  /** Puts the latest report on the clipboard as JSON (else shows it to select by hand). */
  async function copy() {
    await render();
    const text = JSON.stringify(last, null, 2);
    try {
      await navigator.clipboard.writeText(text);
      $('copy-result').textContent = 'Copied.';
    } catch {
      $('copy-result').textContent = 'Copy failed; select the text below.';
      const pre = doc.createElement('pre'); pre.textContent = text; $('diagnostics').appendChild(pre);
    }
  }

  const isOpen = () => !$('diagnostics').hidden;
  /** Asks for a check now; the panel shows what it finds. */
  async function checkUpdates() {
    await invoke('update_action', { action: 'check_now' }).catch((err) => {
      $('copy-result').textContent = (err && err.message) || String(err);
    });
  }
  return { render, copy, isOpen, checkUpdates };
}

/** One line on updates: the version running, where updating stands, when it last looked. */
export function describeUpdate(u) {
  if (!u) return '—';
  const s = u.status || { state: 'off' };
  const checked = u.last_checked ? `, checked ${new Date(u.last_checked).toLocaleString()}` : '';
  const at = {
    off: 'off (no update address in Settings)',
    idle: u.last_checked ? 'up to date' : 'not checked yet',
    checking: 'checking…',
    downloading: `downloading ${s.version}`,
    ready: `${s.version} ready to install`,
    deferred: `${s.version} installs at the next start`,
    installing: `installing ${s.version}`,
  }[s.state] || s.state;
  return `${u.current_version}: ${at}${checked}`;
}
