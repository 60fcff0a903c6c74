// What the page says for each kind of command error (`kind` in src-tauri/src/error.rs).
// The browser tests check these keys against the kinds the app sends (page-samples.json).

export const ERROR_TEXT = {
  wrong_credentials: 'Wrong email or password.',
  unreachable: 'The server could not be reached. Check the connection or the server address in Settings.',
  server_error: null, // the message says which status
  unexpected_answer: 'The server gave an answer this app does not understand.',
  invalid_url: 'The server address is not valid. Fix it in Settings.',
  untrusted_certificate: null, // the message names the host and why (unknown issuer, expired, another name)
  missing_input: null,
  invalid_settings: null,
  not_logged_in: 'Please sign in.',
  storage: null,
  remember_unavailable: null, // the message says why
  superseded: null, // a newer page took over: never shown
  updates_off: null, // the message says to set an update address
};

/** The sentence to show for a command's failure. */
export function errorText(err) {
  return (err && ERROR_TEXT[err.kind]) || (err && err.message) || String(err);
}
