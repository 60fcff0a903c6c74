//! What a launch of the app was asked to do, read from its command line: run the app (the
//! default), make the running one quit (how the Windows installer replaces files: a second
//! launch reaches the first through the single-instance lock), or forget the saved sign-in
//! (how the Windows uninstaller removes the app's data when asked to).

use std::ffi::OsStr;

/// Makes a running instance exit cleanly (it writes the last known table first); exits at
/// once when none runs.
pub const QUIT: &str = "--quit";
/// Removes the remembered session's token from the credential store, then exits.
pub const FORGET_CREDENTIAL: &str = "--forget-credential";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launch {
    App,
    Quit,
    ForgetCredential,
}

impl Launch {
    /// From a whole command line (the program first, as `std::env::args_os` gives it).
    /// Unknown arguments are the app's (Tauri's updater passes the previous ones back).
    pub fn from_args<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Launch {
        let mut launch = Launch::App;
        for arg in args.into_iter().skip(1) {
            let arg = arg.as_ref();
            if arg == QUIT {
                return Launch::Quit;
            }
            if arg == FORGET_CREDENTIAL {
                launch = Launch::ForgetCredential;
            }
        }
        launch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_name_is_not_an_argument() {
        assert_eq!(Launch::from_args(["--quit"]), Launch::App);
        assert_eq!(Launch::from_args(["stock-dashboard"]), Launch::App);
        assert_eq!(Launch::from_args(["stock-dashboard", "--other"]), Launch::App);
    }

    #[test]
    fn quit_wins_over_everything() {
        assert_eq!(Launch::from_args(["app", "--quit"]), Launch::Quit);
        assert_eq!(Launch::from_args(["app", "--forget-credential", "--quit"]), Launch::Quit);
        assert_eq!(Launch::from_args(["app", "--forget-credential"]), Launch::ForgetCredential);
    }
}
