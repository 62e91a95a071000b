/* Small form behaviours that used to be inline handlers (the Content-Security-Policy allows no inline script).
 *   <form data-confirm="Question?">          asks before submitting; cancelling keeps the page as it is.
 *   <button type="submit" data-disable-on-submit>  disabled once its form submits (no double submit).
 */
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      return;
    }
    var button = event.submitter;
    if (button && button.hasAttribute("data-disable-on-submit")) {
      // After this submit has been dispatched, so the button's own name/value still go with the form.
      window.setTimeout(function () { button.disabled = true; }, 0);
    }
  }, true);
})();
