() => {
  window.addEventListener('popstate', () => location.reload());
  let queued = false;
  const label = () => {
    queued = false;
    const status = document.querySelector('#status .prose, #status [data-testid="markdown"]');
    if (status && !status.hasAttribute('aria-live')) {
      status.setAttribute('role', 'status');
      status.setAttribute('aria-live', 'polite');
    }
    document.querySelectorAll('[id^="full-"], [id^="crop-"], #slider, #error-bar').forEach((block) => {
      const caption = block.querySelector('[data-testid="block-label"]');
      const text = caption ? caption.textContent.trim() : '';  // textContent: no layout per frame
      block.querySelectorAll('img').forEach((img) => { if (text && img.alt !== text) img.alt = text; });
    });
    // Kodak thumbnails are read as their names ("kodim05, 5 of 24"), not only "Thumbnail 5 of 24".
    document.querySelectorAll('#kodak button[aria-label^="Thumbnail"]').forEach((button) => {
      const img = button.querySelector('img');
      if (img && img.alt) button.setAttribute('aria-label', img.alt + ', ' + button.getAttribute('aria-label').slice(10));
    });
  };
  new MutationObserver(() => { if (!queued) { queued = true; requestAnimationFrame(label); } })
    .observe(document.body, {childList: true, subtree: true, characterData: true, attributeFilter: ['src']});
  label();
}
