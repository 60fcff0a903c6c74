// A small in-page stand-in for Tauri's IPC (window.__TAURI__.core), so the page can be
// driven in a plain browser. Tests steer it through window.__standin:
//   __standin.handlers[cmd] = (args) => value | Promise   (a rejected promise is a command error)
//   __standin.push(update)                                (sends on the page's channel)
//   __standin.calls                                       (every invoke, in order)
(() => {
  class Channel {
    constructor() { this.onmessage = () => {}; }
  }
  const standin = {
    calls: [],
    channel: null,
    handlers: {
      subscribe: ({ channel }) => { standin.channel = channel; return null; },
      current_session: () => ({ logged_in: false, user: null, settings: { api_base_url: 'http://127.0.0.1:3001', socket_url: 'http://127.0.0.1:3001' } }),
      dashboard: () => ({
        state: { state: 'socket offline', reason: 'not logged in', since: new Date().toISOString(), attempt: 0 },
        history: [], latest: null, products: [], sale_mode: null, gap: null, events_received: 0, last_event_at: null,
      }),
      get_settings: () => ({ api_base_url: 'http://127.0.0.1:3001', socket_url: 'http://127.0.0.1:3001' }),
      save_settings: ({ settings }) => settings,
      logout: () => null,
      diagnostics: () => ({
        app_version: '0.1.0', api_base_url: 'http://127.0.0.1:3001', socket_url: 'http://127.0.0.1:3001',
        user: { id: '1', name: 'Demo Operator' },
        state: { state: 'socket connected', reason: null, since: new Date().toISOString(), attempt: 0 },
        history: [], gap: null, counters: { attempts: 1, events_received: 0, events_dropped: 0, malformed: 0 },
        events_shown: 0, last_event_at: null, last_event_age_secs: null, generated_at: new Date().toISOString(),
      }),
    },
    push(update) {
      if (!standin.channel) throw new Error('the page has not subscribed');
      standin.channel.onmessage(update);
    },
  };
  window.__standin = standin;
  window.__TAURI__ = {
    core: {
      Channel,
      invoke(cmd, args) {
        standin.calls.push({ cmd, args });
        const handler = standin.handlers[cmd];
        if (!handler) return Promise.reject({ kind: 'unknown_command', message: `no handler for ${cmd}` });
        try {
          return Promise.resolve(handler(args || {}));
        } catch (e) {
          return Promise.reject(e);
        }
      },
    },
  };
})();
