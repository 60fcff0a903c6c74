//! An empty Tauri 2 window (the memory baseline for `bench/app-bench.js`).
fn main() {
    tauri::Builder::default().run(tauri::generate_context!()).expect("error while running the empty window");
}
