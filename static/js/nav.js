// The sidebar marks the page you are on: the link whose path is the longest prefix of this page's path.
(function () {
  "use strict";
  function mark() {
    var links = document.querySelectorAll(".sidebar nav a[href]");
    var path = location.pathname, best = null, bestLength = -1;
    links.forEach(function (a) {
      var href = a.getAttribute("href");
      var match = href === "/" ? path === "/" : path === href || path.indexOf(href.replace(/\/?$/, "/")) === 0;
      if (match && href.length > bestLength) { best = a; bestLength = href.length; }
    });
    links.forEach(function (a) {
      a.classList.toggle("active", a === best);
      if (a === best) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mark); else mark();
})();
