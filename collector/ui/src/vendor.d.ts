// Stylesheets imported for the bundle (esbuild puts them in the page's .css).
declare module '*.css';
