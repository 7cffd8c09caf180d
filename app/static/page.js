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
  // On a phone the sidebar of controls covers the page: it closes once Compare is pressed, and
  // when the page opens on a link to a view, so that the results show.
  const hideControls = () => {
    const sidebar = document.querySelector('#controls');
    if (window.innerWidth > 640 || !sidebar || !sidebar.classList.contains('open')) return;
    const toggle = sidebar.querySelector('button[aria-label="Toggle Sidebar"]');
    if (toggle) toggle.click();
  };
  document.addEventListener('click', (event) => {
    if (event.target.closest && event.target.closest('#run')) hideControls();
  });
  if (new URLSearchParams(location.search).get('image')) hideControls();
  // A click on a full view moves every crop: bring the crops into view if they are off screen
  // (the full views lie below them; on a phone the crops are one under another).
  document.addEventListener('click', (event) => {
    if (!event.target.closest || !event.target.closest('.panel img, .locator img')) return;
    const phone = window.innerWidth <= 640;
    const target = document.querySelector(phone ? '#crop-0' : '#strip');
    if (!target) return;
    const r = target.getBoundingClientRect();
    if (r.top < 0 || r.top > window.innerHeight * (phone ? 0.2 : 0.5)) target.scrollIntoView({block: 'start'});
  });
  new MutationObserver(() => { if (!queued) { queued = true; requestAnimationFrame(label); } })
    .observe(document.body, {childList: true, subtree: true, characterData: true, attributeFilter: ['src']});
  label();
}
