//! The JavaScript the renderer runs in its own isolated script world "warren": the state capture, the page restore, and the form-edit watcher.
//!
//! An isolated world shares the page's DOM but none of its JavaScript: page scripts cannot see
//! these scripts, call the "warren" message handler, or redefine the DOM methods they use. The
//! sources live in `js/`; each script is one function (`form_rules.js` followed by the script),
//! so nothing is left in the world's global scope but one deliberate entry: `warrenOnceSecret`,
//! the fields that were password fields when the user typed into them (filled by the watcher,
//! read by the capture), which lives as long as the page.

use std::sync::OnceLock;

use warren_ipc::{MAX_FIELD_VALUE_LEN, MAX_FORM_FIELDS, MAX_SELECTED_OPTIONS};
use webkit2gtk::{
    UserContentInjectedFrames, UserContentManagerExt, UserScript, UserScriptInjectionTime,
    WebViewExt,
};

/// The isolated script world every renderer script runs in.
pub const WORLD: &str = "warren";

/// The name of the message handler `form_watch.js` posts to (registered in [`WORLD`] only).
pub const FORM_HANDLER: &str = "warren";

const FORM_RULES_JS: &str = include_str!("js/form_rules.js");
const CAPTURE_JS: &str = include_str!("js/capture.js");
const RESTORE_JS: &str = include_str!("js/restore.js");
const FORM_WATCH_JS: &str = include_str!("js/form_watch.js");

/// Wraps `prelude`, the form rules and `body` in one strict-mode function and calls it.
fn wrap(prelude: &str, body: &str) -> String {
    format!("(() => {{\n\"use strict\";\n{prelude}\n{FORM_RULES_JS}\n{body}\n}})()")
}

/// The capture script; its value is JSON text for `session::page_state`.
pub fn capture_script() -> &'static str {
    static SCRIPT: OnceLock<String> = OnceLock::new();
    SCRIPT.get_or_init(|| {
        wrap(
            &format!(
                "const WARREN_MAX_FIELDS = {MAX_FORM_FIELDS};\n\
                 const WARREN_MAX_VALUE_LEN = {MAX_FIELD_VALUE_LEN};\n\
                 const WARREN_MAX_SELECTED = {MAX_SELECTED_OPTIONS};"
            ),
            CAPTURE_JS,
        )
    })
}

/// The restore script for a plan from `session::restore_plan_json`; its value is JSON text for
/// `session::restored_field_count`.
pub fn restore_script(plan_json: &str) -> String {
    // JSON is a JavaScript expression, and serde_json wrote this one from our own values.
    wrap(&format!("const warrenPage = {plan_json};"), RESTORE_JS)
}

/// Installs the form-edit watcher in the view: a user script in [`WORLD`], injected at document
/// start into the top frame of every page, and its message handler. `on_message` gets each
/// message's value: true when the user edited a field, false when a form was submitted.
/// Returns false (after logging) when WebKit refuses the handler.
pub fn install_form_watch(view: &webkit2gtk::WebView, on_message: impl Fn(bool) + 'static) -> bool {
    let Some(manager) = view.user_content_manager() else {
        log::warn!(target: "renderer", "the web view has no user content manager: form edits will not be reported");
        return false;
    };
    // Connected before registering, as WebKit's documentation asks.
    manager.connect_script_message_received(
        Some(FORM_HANDLER),
        move |_manager, result| match result.js_value() {
            Some(value) if javascriptcore::ValueExt::is_boolean(&value) => {
                on_message(javascriptcore::ValueExt::to_boolean(&value))
            }
            _ => log::debug!(target: "renderer", "ignoring a form message that is not a boolean"),
        },
    );
    if !manager.register_script_message_handler_in_world(FORM_HANDLER, WORLD) {
        log::warn!(target: "renderer", "WebKit refused the form message handler: form edits will not be reported");
        return false;
    }
    let script = UserScript::for_world(
        &wrap("", FORM_WATCH_JS),
        UserContentInjectedFrames::TopFrame,
        UserScriptInjectionTime::Start,
        WORLD,
        &[],
        &[],
    );
    manager.add_script(&script);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use javascriptcore::{ContextExt, ValueExt};

    /// A stand-in DOM just rich enough for the form rules, in a bare JavaScriptCore context.
    const FAKE_DOM: &str = r#"
        class HTMLInputElement { constructor(a) { Object.assign(this, a); this.attrs = a.attrs || {}; }
            getAttribute(n) { return n in this.attrs ? this.attrs[n] : null; } }
        class HTMLTextAreaElement extends HTMLInputElement {}
        class HTMLSelectElement extends HTMLInputElement {}
        var location = { href: "https://a.example/" };
        var window = { scrollX: 0, scrollY: 3210 };
        var controls = [];
        class Document { querySelectorAll() { return controls; } }
        var document = new Document();
    "#;

    fn run(setup: &str, script: &str) -> String {
        let context = javascriptcore::Context::new();
        context.evaluate(FAKE_DOM).expect("the fake DOM evaluates");
        context.evaluate(setup).expect("the setup evaluates");
        let value = context
            .evaluate(script)
            .expect("the script returns a value");
        if let Some(exception) = context.exception() {
            panic!(
                "script threw: {}",
                javascriptcore::ExceptionExt::message(&exception).unwrap_or_default()
            );
        }
        value.to_str().to_string()
    }

    #[test]
    fn capture_records_edited_fields_and_never_passwords() {
        let json = run(
            r#"controls = [
                new HTMLInputElement({type: "text", value: "typed", defaultValue: "", attrs: {id: "q", name: "q"}}),
                new HTMLInputElement({type: "password", value: "hunter2", defaultValue: ""}),
                new HTMLInputElement({type: "text", value: "same", defaultValue: "same"}),
                new HTMLInputElement({type: "checkbox", checked: true, defaultChecked: false, attrs: {name: "c"}}),
                new HTMLInputElement({type: "text", value: "123456", defaultValue: "", attrs: {autocomplete: "one-time-code"}}),
                new HTMLInputElement({type: "hidden", value: "x", defaultValue: ""}),
                new HTMLTextAreaElement({value: "long text", defaultValue: "", attrs: {name: "t"}}),
            ];"#,
            capture_script(),
        );
        let page = crate::session::page_state(Ok(&json), "https://a.example/", 1.0);
        assert_eq!(page.scroll_y, 3210.0);
        let indices: Vec<u32> = page.fields.iter().map(|f| f.index).collect();
        assert_eq!(indices, vec![0, 3, 6], "{json}");
        assert!(!json.contains("hunter2"), "{json}");
        assert!(!json.contains("123456"), "{json}");
        assert_eq!(page.fields[0].id, "q");
        assert_eq!(page.fields[1].value, warren_ipc::FieldValue::Checked(true));
    }

    #[test]
    fn scripts_are_single_expressions_that_leave_no_globals() {
        let context = javascriptcore::Context::new();
        context.evaluate(FAKE_DOM).unwrap();
        for _ in 0..2 {
            // A second run must not fail on a redeclared constant.
            let value = context.evaluate(capture_script()).unwrap();
            assert!(context.exception().is_none());
            assert!(value.is_string());
        }
        let leaked = context.evaluate("typeof warrenControlKind").unwrap();
        assert_eq!(leaked.to_str(), "undefined");
    }
}
