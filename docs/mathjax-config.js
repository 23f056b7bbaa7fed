// MathJax 3 settings for the docs: $...$ and $$...$$ as in the notebooks.
window.MathJax = {
  tex: {inlineMath: [["$", "$"], ["\\(", "\\)"]], displayMath: [["$$", "$$"], ["\\[", "\\]"]]},
  options: {skipHtmlTags: ["script", "noscript", "style", "textarea", "pre", "code"]}
};
