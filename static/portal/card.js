// Card entry and 3-D Secure in the portal, with Stripe.js (Stripe's own, or the stand-in's in development).
// The card goes from this page to Stripe; our server only ever sees the SetupIntent's id, and reads the
// SetupIntent back from Stripe before it uses the card.
(function () {
  "use strict";

  function say(box, text) {
    box.textContent = text;
    box.hidden = !text;
  }

  // Stripe.js for the element's publishable key; null (and the control disabled, the reason said) if it did not load.
  function stripeFor(el, error, control, what) {
    if (typeof window.Stripe === "function") return window.Stripe(el.dataset.publishableKey);
    say(error, "The secure " + what + " could not load. Check your connection and reload the page.");
    control.disabled = true;
    return null;
  }

  // The "Save this card" form: mount the card element, confirm the SetupIntent, then post its id.
  function cardForm(form) {
    var error = form.querySelector("[data-card-error]");
    var button = form.querySelector("button[type=submit]");
    var stripe = stripeFor(form, error, button, "card form");
    if (!stripe) return;
    var card = stripe.elements().create("card");
    card.mount(form.querySelector("[data-card-element]"));
    form.addEventListener("submit", function (event) {
      if (form.elements.setup_intent.value) return; // confirmed: let it post
      event.preventDefault();
      button.disabled = true;
      say(error, "");
      form.setAttribute("aria-busy", "true");
      stripe.confirmCardSetup(form.dataset.clientSecret, { payment_method: { card: card } }).then(function (result) {
        form.removeAttribute("aria-busy");
        if (result.error) {
          say(error, (result.error.message || "The card was not saved.") + " Nothing was charged; you can try another card.");
          button.disabled = false;
          return;
        }
        form.elements.setup_intent.value = result.setupIntent.id;
        form.submit();
      });
    });
  }

  // "Confirm with my bank": authenticate the held payment, then ask the server to look again.
  function authenticateButton(button) {
    var form = button.closest("form");
    var error = form.querySelector("[data-card-error]");
    var stripe = stripeFor(button, error, button, "payment step");
    if (!stripe) return;
    button.addEventListener("click", function (event) {
      event.preventDefault();
      button.disabled = true;
      say(error, "");
      stripe.confirmCardPayment(button.dataset.clientSecret).then(function (result) {
        if (result.error) {
          say(error, (result.error.message || "Your bank did not confirm the payment.") + " Your plan is unchanged.");
          button.disabled = false;
          return;
        }
        form.submit();
      });
    });
  }

  function bind(root) {
    root.querySelectorAll("form[data-card-form]:not([data-bound])").forEach(function (form) {
      form.setAttribute("data-bound", "");
      cardForm(form);
    });
    root.querySelectorAll("button[data-authenticate]:not([data-bound])").forEach(function (button) {
      button.setAttribute("data-bound", "");
      authenticateButton(button);
    });
  }

  document.addEventListener("DOMContentLoaded", function () { bind(document); });
  document.addEventListener("htmx:afterSwap", function (event) { bind(event.target); });
})();
