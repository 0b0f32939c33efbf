// Small progressive enhancements; the pages work without them. No inline scripts (CSP).
document.addEventListener("DOMContentLoaded", () => {
  // "Select all" checkboxes: <input type="checkbox" data-select-all="name-of-the-boxes">
  document.querySelectorAll("[data-select-all]").forEach((box) => {
    box.addEventListener("change", () => {
      document.querySelectorAll(`input[type=checkbox][name="${box.dataset.selectAll}"]`).forEach((b) => {
        if (!b.disabled) b.checked = box.checked;
      });
    });
  });
  // A table wider than a phone scrolls sideways: keyboard users must be able to focus it to scroll it.
  document.querySelectorAll(".table-responsive:not([tabindex])").forEach((el) => el.setAttribute("tabindex", "0"));
  // Buttons that print the page: <button data-print>
  document.querySelectorAll("[data-print]").forEach((b) => b.addEventListener("click", () => window.print()));
  // Forms that auto-submit on change: <select data-autosubmit>
  document.querySelectorAll("[data-autosubmit]").forEach((el) => el.addEventListener("change", () => el.form.requestSubmit()));
  // Confirm before destructive or writing actions: <button data-confirm="...">
  document.querySelectorAll("[data-confirm]").forEach((el) =>
    el.addEventListener("click", (e) => { if (!window.confirm(el.dataset.confirm)) e.preventDefault(); }));
});
// A double click on a submit button sends the form once.
document.addEventListener("submit", (e) => {
  const form = e.target;
  if (form.dataset.submitted === "1" && !form.hasAttribute("data-allow-resubmit")) { e.preventDefault(); return; }
  form.dataset.submitted = "1";
  setTimeout(() => { form.dataset.submitted = ""; }, 4000);
});

// The connection form's on-premise host field only matters for "On-premise server": hide it otherwise.
// <select data-onprem-toggle="onprem"> and wrappers with class "onprem-only" in the same form. Without JS the
// field simply stays visible (its help text says when it is needed).
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("select[data-onprem-toggle]").forEach((select) => {
    const update = () => {
      const show = select.value === select.dataset.onpremToggle;
      select.form.querySelectorAll(".onprem-only").forEach((wrapper) => {
        wrapper.hidden = !show;
        wrapper.querySelectorAll("input").forEach((input) => { input.disabled = !show; });
      });
    };
    select.addEventListener("change", update);
    update();
  });
});

// A read-only link to copy (a failed invitation's link on the team page): focusing it selects it all.
document.addEventListener("focusin", (event) => {
  if (event.target.matches && event.target.matches("input[data-select-on-focus]")) event.target.select();
});
