"""One module per page (or small group of pages): an APIRouter and its templates."""
