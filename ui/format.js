// How numbers and times are written on the page.

export const money = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });

/** "12 s ago", "3 min ago", "2 h ago", then the date and time. */
export function ago(iso, now = Date.now()) {
  const secs = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (!Number.isFinite(secs)) return iso;
  if (secs < 60) return `${secs} s ago`;
  if (secs < 3600) return `${Math.floor(secs / 60)} min ago`;
  if (secs < 86400) return `${Math.floor(secs / 3600)} h ago`;
  return new Date(iso).toLocaleString();
}
