// <select data-autosubmit> submits its form when changed (the form's own button stays for keyboards without JS).
document.addEventListener("change", function (event) {
  var select = event.target.closest && event.target.closest("select[data-autosubmit]");
  if (select && select.form) select.form.submit();
});
