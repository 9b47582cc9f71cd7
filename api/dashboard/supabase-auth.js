// The second bundle (bundle.ts: /supabase-auth.js, an ES module): supabase-js, about 210 KB minified
// against the page's 50 KB, so the page fetches it only when the API names a Supabase project
// (sign-in-supabase.js imports it then). Nothing else goes in here.
export { createClient } from '@supabase/supabase-js';
