// How numbers and times are written on the page: in the operator's locale and time zone.

export const money = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });

const EXACT = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'short',
});
const CLOCK = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

/** "12 s ago", "3 min ago", "2 h ago", then the local date and time. */
export function ago(iso, now = Date.now()) {
  const at = Date.parse(iso);
  if (!Number.isFinite(at)) return iso == null ? '' : String(iso);
  const secs = Math.max(0, Math.round((now - at) / 1000));
  if (secs < 60) return `${secs} s ago`;
  if (secs < 3600) return `${Math.floor(secs / 60)} min ago`;
  if (secs < 86400) return `${Math.floor(secs / 3600)} h ago`;
  return EXACT.format(at);
}

/** The exact local date and time with its zone, e.g. "1 Dec 2026, 16:00:00 GMT+6" (for hovering). */
export function exactTime(iso) {
  const at = Date.parse(iso);
  return Number.isFinite(at) ? EXACT.format(at) : (iso == null ? '' : String(iso));
}

/** Hours and minutes in local time, e.g. "16:00" (for "last known at …"). */
export function clockTime(iso) {
  const at = Date.parse(iso);
  return Number.isFinite(at) ? CLOCK.format(at) : '';
}
