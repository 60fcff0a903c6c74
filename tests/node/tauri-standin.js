// A small in-page stand-in for Tauri's IPC (window.__TAURI__.core), so the page can be
// driven in a plain browser. Its canned answers are the samples the app's Rust types
// wrote (window.__pageSamples, from page-samples.json), so they cannot drift from what the
// app sends. Tests steer it through window.__standin:
//   __standin.handlers[cmd] = (args) => value | Promise   (a rejected promise is a command error)
//   __standin.push(update | [updates])                    (queues for the page's next_updates;
//                                                          resolves once the page has applied it)
//   __standin.resync()                                    (tells the page its updates were dropped)
//   __standin.polling                                     (true once the page pulls updates)
//   __standin.calls                                       (every invoke but next_updates, in order)
// Like the app, it answers a waiting `next_updates` as soon as something is queued, and a
// call while something is queued at once, with everything queued as one batch. (The app
// also holds answers to one per frame: tested in Rust, src-tauri/src/outlet.rs.)
(() => {
  const samples = window.__pageSamples;
  if (!samples) throw new Error('tauri-standin.js needs window.__pageSamples (tests/node/page-samples.json)');
  const copy = (v) => JSON.parse(JSON.stringify(v));
  const now = () => new Date().toISOString();
  const standin = {
    samples,
    calls: [],
    generation: 0,
    polling: false,
    queue: [], // updates not yet taken by the page
    resyncNext: false,
    queuedAcks: [], // resolvers of push() for what is in `queue`
    takenAcks: [], // ... for the batch the page took last: applied when it asks again
    waiting: null, // the page's pending next_updates call
    handlers: {
      subscribe: () => { standin.generation += 1; standin.queue = []; return standin.generation; },
      next_updates: ({ generation }) => {
        standin.polling = true;
        const applied = standin.takenAcks;
        standin.takenAcks = [];
        applied.forEach((resolve) => resolve());
        if (generation !== standin.generation) return Promise.reject({ kind: 'superseded', message: 'a newer page has subscribed' });
        if (standin.queue.length || standin.resyncNext) return standin.take();
        return new Promise((resolve) => { standin.waiting = resolve; });
      },
      current_session: () => ({ ...copy(samples.session), logged_in: false, user: null }),
      // Not logged in: offline, nothing shown yet.
      dashboard: () => ({
        ...copy(samples.dashboard),
        state: { state: 'socket offline', reason: 'not logged in', since: now(), attempt: 0 },
        history: [], latest: null, products: [], sale_mode: null, gap: null, events_received: 0, last_event_at: null,
      }),
      get_settings: () => copy(samples.settings),
      save_settings: ({ settings }) => settings,
      logout: () => null,
      diagnostics: () => ({ ...copy(samples.diagnostics), generated_at: now() }),
      update_status: () => copy(samples.update_views.off),
      update_action: ({ action }) => (samples.update_actions.includes(action)
        ? null
        : Promise.reject({ kind: 'invalid_action', message: `the app takes no update action "${action}"` })),
      set_watched: ({ productId, watched }) => {
        standin.watched = standin.watched.filter((id) => id !== productId).concat(watched ? [productId] : []).sort((a, b) => a - b);
        return [...standin.watched];
      },
    },
    watched: [],
    take() {
      const batch = { updates: standin.queue, resync: standin.resyncNext };
      standin.queue = [];
      standin.resyncNext = false;
      standin.takenAcks = standin.queuedAcks;
      standin.queuedAcks = [];
      return batch;
    },
    resync() {
      standin.resyncNext = true;
      return standin.push([]);
    },
    push(update) {
      if (!standin.generation) throw new Error('the page has not subscribed');
      standin.queue.push(...(Array.isArray(update) ? update : [update]));
      const applied = new Promise((resolve) => standin.queuedAcks.push(resolve));
      if (standin.waiting) {
        const answer = standin.waiting;
        standin.waiting = null;
        answer(standin.take());
      }
      return applied;
    },
  };
  window.__standin = standin;
  window.__TAURI__ = {
    core: {
      invoke(cmd, args) {
        if (cmd !== 'next_updates') standin.calls.push({ cmd, args });
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
