// Copy buttons: <button data-copy-target="input-id">; writes the input's value to the clipboard.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy-target]");
  if (!button) return;
  const input = document.getElementById(button.dataset.copyTarget);
  const status = button.parentElement.querySelector(".copy-status");
  try {
    await navigator.clipboard.writeText(input.value);
    if (status) status.textContent = "Copied";
  } catch (err) {
    input.select();
    if (status) status.textContent = "Press Ctrl+C to copy";
  }
});
