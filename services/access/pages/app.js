// Progressive enhancement: the rules beside a new password are marked as the
// contact types. The server checks again and is the authority; without
// JavaScript the form works the same.
(function () {
  var input = document.querySelector('input[data-check="password"]');
  var items = document.querySelectorAll('#rules li[data-rule]');
  if (!input || !items.length) { return; }
  var checks = {
    letter: function (v) { return /\p{L}/u.test(v); },
    digit: function (v) { return /[0-9]/.test(v); },
    mixed: function (v) { return /\p{Lu}/u.test(v) && /\p{Ll}/u.test(v); },
    symbol: function (v) { return /[^\p{L}\p{N}\s]/u.test(v); }
  };
  function met(rule, value) {
    if (rule.indexOf('length:') === 0) { return Array.from(value).length >= parseInt(rule.slice(7), 10); }
    return checks[rule] ? checks[rule](value) : false;
  }
  var words = document.getElementById('rules');
  function update() {
    items.forEach(function (li) {
      var ok = met(li.getAttribute('data-rule'), input.value);
      li.classList.toggle('met', ok);
      var state = li.querySelector('.state');
      if (state) { state.textContent = ok ? ' (' + (words.dataset.met || 'met') + ')' : ''; }
    });
  }
  input.addEventListener('input', update);
  update();
  var summary = document.getElementById('error-summary');
  if (summary) { summary.focus(); }
})();
