// Row editors (a formset as table rows: post-call fields, scripted answers, handover rules, API action parameters,
// headers and query). Markup: an element with data-row-editor="<formset prefix>" holding the management form, a
// [data-rows] <tbody>, a <template data-row-template> with the empty form's row and a [data-row-add] button.
// "Add" appends a copy of the template (__prefix__ replaced by the next index) and bumps TOTAL_FORMS; "Remove" is
// the formset's DELETE checkbox, which also strikes the row through.
(function () {
  "use strict";
  function setup(editor) {
    if (editor.dataset.ready) return;
    editor.dataset.ready = "1";
    var prefix = editor.dataset.rowEditor;
    var total = editor.querySelector("input[name='" + prefix + "-TOTAL_FORMS']");
    var body = editor.querySelector("[data-rows]");
    var template = editor.querySelector("template[data-row-template]");
    editor.querySelector("[data-row-add]").addEventListener("click", function () {
      var index = parseInt(total.value, 10) || 0;
      var html = template.innerHTML.replace(/__prefix__/g, String(index));
      var holder = document.createElement("tbody");
      holder.innerHTML = html;
      var row = holder.querySelector("tr");
      body.appendChild(row);
      total.value = String(index + 1);
      var first = row.querySelector("input:not([type=checkbox]), select, textarea");
      if (first) first.focus();
    });
    editor.addEventListener("change", function (e) {
      var box = e.target;
      if (box.type === "checkbox" && /-DELETE$/.test(box.name)) {
        box.closest("tr").classList.toggle("row-removed", box.checked);
      }
    });
  }
  function init() { document.querySelectorAll("[data-row-editor]").forEach(setup); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
  document.addEventListener("htmx:afterSettle", init);
})();
