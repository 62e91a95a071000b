// Post-call fields on the version form: "Add a field" appends a row (Django formset empty_form, __prefix__ numbered).
(function () {
  function init() {
    var button = document.querySelector("[data-analysis-add]");
    var template = document.querySelector("template[data-analysis-template]");
    var rows = document.querySelector("[data-analysis-rows]");
    var total = document.querySelector('input[name="analysis_field-TOTAL_FORMS"]');
    if (!button || !template || !rows || !total) return;
    button.addEventListener("click", function () {
      var index = parseInt(total.value, 10) || 0;
      var html = template.innerHTML.replace(/__prefix__/g, String(index));
      var body = document.createElement("tbody");
      body.innerHTML = html;
      var row = body.firstElementChild;
      rows.appendChild(row);
      total.value = String(index + 1);
      var first = row.querySelector("input");
      if (first) first.focus();
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
