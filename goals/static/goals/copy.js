// "Copy" buttons copy the text of the element named by data-copy (the [GOALS] block) to the
// clipboard; where the clipboard is not available the text is selected for Ctrl-C instead.
// No network access.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) { return; }
    var source = document.getElementById(button.dataset.copy);
    if (!source) { return; }
    var selectIt = function () {
      var range = document.createRange();
      range.selectNodeContents(source);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(source.textContent).then(function () {
        button.textContent = "Copied";
      }, selectIt);
    } else {
      selectIt();
      button.textContent = "Selected: press Ctrl-C";
    }
  });
})();
