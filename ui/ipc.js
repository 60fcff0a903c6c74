// The IPC client: the only module that talks to the app (window.__TAURI__.core.invoke;
// tests replace that object with a stand-in).

const tauri = () => window.__TAURI__ && window.__TAURI__.core;

export function invoke(cmd, args) {
  const core = tauri();
  if (!core) return Promise.reject({ kind: 'no_backend', message: 'This page must run inside the Stock Dashboard app.' });
  return core.invoke(cmd, args);
}

/**
 * Subscribes to the app's updates and pulls them for as long as this page is the current
 * one. The app answers `next_updates` at once when something is queued, at most once per
 * frame, with an empty batch after a quiet while (src-tauri/src/outlet.rs); each batch is
 * handed to `onBatch` as it comes. `onResync` reloads the whole view: when the app dropped
 * updates for this page, or after a failed call. Resolves once subscribed (so nothing sent
 * from then on is missed); the pulling goes on in the background.
 */
export async function follow({ onBatch, onResync }) {
  const generation = await invoke('subscribe');
  pull(generation, onBatch, onResync);
}

async function pull(generation, onBatch, onResync) {
  for (;;) {
    let batch;
    try {
      batch = await invoke('next_updates', { generation });
    } catch (err) {
      if (err && err.kind === 'superseded') return; // a newer page took over
      console.warn('could not fetch updates; reloading the view', err);
      await new Promise((r) => setTimeout(r, 1000));
      await onResync().catch(() => {});
      continue;
    }
    if (batch.resync) await onResync().catch(() => {});
    if (batch.updates.length) onBatch(batch.updates);
  }
}
