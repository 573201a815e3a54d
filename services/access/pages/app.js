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

// Passkeys: a button that asks the browser for one (WebAuthn) and sends
// its answer with the form. Shown only where the browser can; without it,
// the form's other ways to sign in work as before.
(function () {
  var PKC = window.PublicKeyCredential;
  if (!PKC || !PKC.parseCreationOptionsFromJSON || !PKC.parseRequestOptionsFromJSON) { return; }
  document.querySelectorAll('div[data-passkey]').forEach(function (box) {
    var form = box.closest('form');
    var button = box.querySelector('button');
    var answer = box.querySelector('input[name="credential"]');
    var status = box.querySelector('.passkey-status');
    if (!form || !button || !answer) { return; }
    box.hidden = false;
    button.addEventListener('click', function () {
      var create = box.getAttribute('data-passkey') === 'create';
      // A passkey the server then refuses (no name, say) would stay on the
      // device: a registration form's own checks come first. (A sign-in
      // form's password field is not this button's business.)
      if (create && !form.reportValidity()) { return; }
      var options = JSON.parse(box.getAttribute('data-options')).publicKey;
      var asked = create
        ? navigator.credentials.create({ publicKey: PKC.parseCreationOptionsFromJSON(options) })
        : navigator.credentials.get({ publicKey: PKC.parseRequestOptionsFromJSON(options) });
      button.disabled = true;
      asked.then(function (credential) {
        answer.value = JSON.stringify(credential.toJSON());
        form.submit();
      }).catch(function () {
        button.disabled = false;
        status.textContent = box.getAttribute('data-failed');
      });
    });
  });
})();
