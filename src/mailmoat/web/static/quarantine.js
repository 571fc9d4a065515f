// Quarantine page: the header checkbox selects every message on the page.
"use strict";
(function () {
  var all = document.getElementById("select-all");
  if (!all) { return; }
  var picks = function () { return document.querySelectorAll("input.pick"); };
  all.addEventListener("change", function () {
    picks().forEach(function (box) { box.checked = all.checked; });
  });
})();
