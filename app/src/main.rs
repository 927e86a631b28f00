//! The page's entry point: installs the panic hook and mounts the app.

fn main() {
    #[cfg(target_arch = "wasm32")]
    {
        console_error_panic_hook::set_once();
        leptos::mount::mount_to_body(duet_app::ui::App);
    }
}
