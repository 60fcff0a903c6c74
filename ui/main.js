// The dashboard page: wires the modules to the document and the app. Plain ES modules, no
// bundler (allowed under the window's `script-src 'self'`).
//   ipc.js          the only module that talks to the app
//   state.js        reads a batch of updates (pure)
//   banner.js       connection state, latest product, sale mode, gap notice
//   table.js        the windowed stock table
//   diagnostics.js  the support panel
//   errors.js       what each command error kind says
// The page keeps no history of its own: the app's `dashboard` and `diagnostics` have it.

import { invoke, follow } from './ipc.js';
import { readBatch } from './state.js';
import { createBanner } from './banner.js';
import { createTable } from './table.js';
import { createDiagnostics } from './diagnostics.js';
import { errorText } from './errors.js';

const $ = (id) => document.getElementById(id);
const banner = createBanner();
const table = createTable(document, { onWatch: watch });
const diagnostics = createDiagnostics(invoke);
let settings = null;

// ---- updates -------------------------------------------------------------------------------
/** Draws one batch as it comes: one pass over the DOM per batch. */
function draw(updates) {
  const b = readBatch(updates);
  if (b.state) {
    banner.showState(b.state);
    if (diagnostics.isOpen()) diagnostics.render();
  }
  if (b.rows.length) table.upsert(b.rows);
  if (b.latest) banner.showLatest(b.latest);
  if (b.saleMode !== undefined) banner.showSaleMode(b.saleMode);
  if (b.gap !== undefined) banner.showGap(b.gap);
  // A completed catch-up: values restored from disk are current now.
  if (b.gap === null) banner.showLastKnown(null);
  if (b.sessionEnded) showLogin(b.sessionEnded);
  if (b.update) {
    banner.showUpdate(b.update);
    if (diagnostics.isOpen()) diagnostics.render();
  }
}

/** The banner's Install and restart / Later. */
async function updateAction(action) {
  for (const id of ['update-install', 'update-later']) $(id).disabled = true;
  try {
    await invoke('update_action', { action });
  } catch (err) {
    console.warn(`update ${action}: ${errorText(err)}`);
  } finally {
    for (const id of ['update-install', 'update-later']) $(id).disabled = false;
  }
}

/** Reads the whole view from the app and draws it from scratch. */
async function loadDashboard() {
  const view = await invoke('dashboard');
  table.reset();
  banner.showState(view.state);
  if (view.products.length) table.upsert(view.products);
  if (view.latest) banner.showLatest(view.latest);
  if (view.sale_mode) banner.showSaleMode(view.sale_mode);
  banner.showGap(view.gap);
  banner.showLastKnown(view.last_known);
}

/** Stars or un-stars a product; the table shows what the app saved. */
async function watch(productId, watched) {
  try {
    table.setWatched(await invoke('set_watched', { productId, watched }));
  } catch (err) {
    console.warn(`could not ${watched ? 'watch' : 'unwatch'} product ${productId}: ${errorText(err)}`);
  }
}

// ---- views ---------------------------------------------------------------------------------
function showLogin(message) {
  $('login-view').hidden = false;
  $('dashboard-view').hidden = true;
  $('logout').hidden = true;
  $('toggle-diagnostics').hidden = true;
  $('diagnostics').hidden = true;
  $('login-server').textContent = settings ? `Server: ${settings.api_base_url}` : '';
  showLoginError(message || '');
  // Never pull the caret away from someone already typing in the form.
  if (!$('login-form').contains(document.activeElement)) $('login-email').focus();
}

function showDashboard() {
  $('login-view').hidden = true;
  $('dashboard-view').hidden = false;
  $('logout').hidden = false;
  $('toggle-diagnostics').hidden = false;
  table.measure();
  table.redraw();
}

/** Flags an unencrypted connection (http:// to another computer, allowed in Settings). */
function showUnencrypted(unencrypted) {
  $('unencrypted-flag').hidden = !unencrypted;
}

/** "Remember me" needs the computer's credential store; without one it is off, with why. */
function showRemember(remember) {
  const box = $('login-remember');
  const note = $('login-remember-note');
  const available = !remember || remember.available;
  box.disabled = !available;
  if (!available) box.checked = false;
  note.textContent = available ? '' : `Remember me is off: ${remember.reason}`;
  note.hidden = available;
}

function showLoginError(text) {
  const el = $('login-error');
  el.textContent = text;
  el.hidden = !text;
}

async function onLogin(ev) {
  ev.preventDefault();
  const email = $('login-email').value.trim();
  const password = $('login-password').value;
  if (!email) return showLoginError('Enter your email address.');
  if (!password) return showLoginError('Enter your password.');
  const button = $('login-submit');
  button.disabled = true;
  button.classList.add('busy');
  button.textContent = 'Signing in';
  showLoginError('');
  try {
    await invoke('login', { email, password, remember: $('login-remember').checked });
    $('login-password').value = '';
    showDashboard();
    await loadDashboard();
  } catch (err) {
    showLoginError(errorText(err));
  } finally {
    button.disabled = false;
    button.classList.remove('busy');
    button.textContent = 'Sign in';
  }
}

async function onLogout() {
  await invoke('logout').catch(() => {});
  table.reset();
  showLogin('');
}

// ---- settings ------------------------------------------------------------------------------
async function openSettings() {
  const s = await invoke('get_settings').catch(() => settings);
  if (s) {
    $('settings-api').value = s.api_base_url;
    $('settings-socket').value = s.socket_url;
    $('settings-ca-file').value = s.ca_file || '';
    $('settings-allow-unencrypted').checked = Boolean(s.allow_unencrypted);
    $('settings-close-to-tray').checked = s.close_to_tray !== false;
    $('settings-notifications').checked = s.notifications !== false;
    $('settings-till-name').value = s.till_name || '';
    $('settings-update-url').value = s.update_url || '';
  }
  $('settings-error').hidden = true;
  $('settings-dialog').showModal();
}

async function saveSettings(ev) {
  ev.preventDefault();
  try {
    settings = await invoke('save_settings', {
      settings: {
        api_base_url: $('settings-api').value,
        socket_url: $('settings-socket').value,
        ca_file: $('settings-ca-file').value.trim() || null,
        allow_unencrypted: $('settings-allow-unencrypted').checked,
        close_to_tray: $('settings-close-to-tray').checked,
        notifications: $('settings-notifications').checked,
        till_name: $('settings-till-name').value,
        update_url: $('settings-update-url').value,
      },
    });
    $('settings-dialog').close();
    const session = await invoke('current_session').catch(() => null);
    if (session) showUnencrypted(session.unencrypted);
    if (!$('login-view').hidden) $('login-server').textContent = `Server: ${settings.api_base_url}`;
  } catch (err) {
    $('settings-error').textContent = errorText(err);
    $('settings-error').hidden = false;
  }
}

// ---- start ---------------------------------------------------------------------------------
async function start() {
  $('login-form').addEventListener('submit', onLogin);
  $('login-submit').disabled = false; // handled from now on (index.html has it disabled until here)
  $('logout').addEventListener('click', onLogout);
  $('stock-filter').addEventListener('input', () => table.setFilter($('stock-filter').value));
  $('table-wrap').addEventListener('scroll', () => { table.measure(); table.redraw(); }, { passive: true });
  window.addEventListener('resize', () => { table.measure(); table.redraw(); });
  for (const th of document.querySelectorAll('th[data-sort]')) {
    th.addEventListener('click', () => {
      const dir = table.sortBy(th.dataset.sort);
      for (const other of document.querySelectorAll('th[data-sort]')) {
        other.setAttribute('aria-sort', other === th ? (dir > 0 ? 'ascending' : 'descending') : 'none');
      }
    });
  }
  $('open-settings').addEventListener('click', openSettings);
  $('settings-cancel').addEventListener('click', () => $('settings-dialog').close());
  $('settings-form').addEventListener('submit', saveSettings);
  $('toggle-diagnostics').addEventListener('click', () => {
    const el = $('diagnostics');
    el.hidden = !el.hidden;
    if (!el.hidden) diagnostics.render();
  });
  $('copy-diagnostics').addEventListener('click', () => diagnostics.copy());
  $('check-updates').addEventListener('click', () => diagnostics.checkUpdates());
  $('update-install').addEventListener('click', () => updateAction('install'));
  $('update-later').addEventListener('click', () => updateAction('later'));
  setInterval(() => { banner.tick(); table.tick(); if (diagnostics.isOpen()) diagnostics.render(); }, 1000);
  try {
    await follow({ onBatch: draw, onResync: loadDashboard }); // first, so nothing sent from now on is missed
    const session = await invoke('current_session');
    settings = session.settings;
    showRemember(session.remember);
    table.setWatched(session.watched || []);
    showUnencrypted(session.unencrypted);
    await loadDashboard(); // then the current state: nothing sent before we listened is lost
    banner.showUpdate(await invoke('update_status').catch(() => null));
    if (session.logged_in) showDashboard();
    else showLogin('');
  } catch (err) {
    showLogin((err && err.message) || String(err));
  }
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
