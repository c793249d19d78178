// The console's few lines of script (no inline script: the CSP forbids it). Everything works
// without it; it adds confirm dialogs, copy buttons and select-on-focus.
(function () {
  "use strict";

  // A form marked data-confirm="question" asks first, in the page's one <dialog>.
  function confirmBeforeSubmit(event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
    if (form.dataset.confirmed === "yes") { delete form.dataset.confirmed; return; }
    var dialog = document.getElementById("confirm-dialog");
    if (!dialog || typeof dialog.showModal !== "function") return; // no dialog: just send
    event.preventDefault();
    var submitter = event.submitter || null;
    document.getElementById("confirm-message").textContent = form.dataset.confirm;
    dialog.returnValue = "";
    dialog.addEventListener("close", function onClose() {
      dialog.removeEventListener("close", onClose);
      if (dialog.returnValue === "confirm") {
        form.dataset.confirmed = "yes";
        if (form.requestSubmit) { form.requestSubmit(submitter); } else { form.submit(); }
      } else if (submitter) {
        submitter.focus();
      }
    });
    dialog.showModal();
  }

  function copyTarget(event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var input = document.querySelector(button.dataset.copy);
    if (!input) return;
    input.select();
    if (navigator.clipboard) {
      navigator.clipboard.writeText(input.value).then(function () {
        button.textContent = "Copied";
      }, function () {});
    }
  }

  function selectOnFocus(event) {
    if (event.target.matches && event.target.matches("[data-select-on-focus]")) {
      event.target.select();
    }
  }

  document.addEventListener("submit", confirmBeforeSubmit, true);
  document.addEventListener("click", copyTarget);
  document.addEventListener("focusin", selectOnFocus);
})();
