// Copy buttons: <button data-copy-target="input-id">; writes the input's value to the clipboard. The button says
// "Copied" for a moment (and so does a .copy-status next to it); where the clipboard API is missing (plain http
// on a non-local address) the input's text is selected and copied the old way.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy-target]");
  if (!button) return;
  const input = document.getElementById(button.dataset.copyTarget);
  const status = button.parentElement.querySelector(".copy-status");
  const label = button.dataset.label || button.textContent;
  button.dataset.label = label;
  let copied = false;
  try {
    await navigator.clipboard.writeText(input.value);
    copied = true;
  } catch (err) {
    input.select();
    try { copied = document.execCommand("copy"); } catch (err2) { copied = false; }
  }
  button.textContent = copied ? "Copied" : label;
  if (status) status.textContent = copied ? "Copied" : "Press Ctrl+C to copy";
  clearTimeout(button._copyTimer);
  if (copied) button._copyTimer = setTimeout(() => { button.textContent = label; }, 2000);
});
