(q) => {
  if (!q) return '';
  const input = (s) => { const p = new URLSearchParams(s); return ['image', 'sigma', 'seed'].map((k) => p.get(k)).join('|'); };
  const ours = Boolean(history.state && history.state.denoiserView);
  const image = new URLSearchParams(q).get('image');
  const push = Boolean(image) && (!location.search || (ours && input(location.search) !== input(q)));
  if (push) history.pushState({denoiserView: true}, '', '?' + q);
  else history.replaceState({denoiserView: true}, '', '?' + q);
  const url = location.origin + location.pathname + '?' + q;
  if (image) return url;
  return 'An upload cannot be linked: this address opens the settings without the image. ' + url;
}
